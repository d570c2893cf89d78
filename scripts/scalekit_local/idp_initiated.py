"""IdP-initiated login: the token Scalekit sends to the app's initiate-login URL.

When a user starts at their identity provider's portal, Scalekit does not send the app an
unsolicited code; it redirects the browser to the app's initiate-login URL with
`?idp_initiated_login=<JWT>` (sso/guides/idp-init-sso.mdx). The JWT is signed with the environment's
key and carries `organization_id`, `connection_id`, `login_hint`, `exp`, `nbf`, `iat` and `iss`
(the docs' example lives 5 minutes), plus `relay_state` when the IdP sent one (the SDKs' claim
types). The app checks it with `get_idp_initiated_login_claims` / `getIdpInitiatedLoginClaims` and
starts a fresh SP-initiated login with those values.

    POST /_local/idp-initiated-login   JSON {connection_id, login_hint?, relay_state?}
                                       -> {"token": JWT, "claims": {...}}: what the IdP portal would cause
"""
from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN_TTL = 300


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": "invalid_request" if status == 400 else "not_found",
                         "error_description": message}, status_code=status)


async def idp_initiated_login(request: Request) -> Response:
    ctx = request.app.state.ctx
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _bad("send a JSON object")
    unknown = set(body) - {"connection_id", "login_hint", "relay_state"}
    if unknown:
        return _bad(f"unknown key {min(unknown)!r}")
    connection = ctx.store.connection(str(body.get("connection_id") or ""))
    if connection is None or not connection.enabled:
        return _bad("connection_id must name an enabled SSO connection", 404)
    issued = int(time.time())
    claims = {"iss": ctx.issuer_for(request.headers.get("host")), "organization_id": connection.organization_id,
              "connection_id": connection.id, "iat": issued, "nbf": issued, "exp": issued + TOKEN_TTL}
    for key in ("login_hint", "relay_state"):
        if body.get(key):
            claims[key] = str(body[key])
    return JSONResponse({"token": ctx.tokens.sign(claims), "claims": claims})


def routes() -> list[Route]:
    return [Route("/_local/idp-initiated-login", idp_initiated_login, methods=["POST"])]
