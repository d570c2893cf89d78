"""Custom-auth bridge: an MCP server (or app) that keeps its own login.

A resource with `custom_auth: {login_url, connection_id}` in the seed makes `/oauth/authorize`
(mcp_as.py) redirect the browser to the app's login URL with `login_request_id` and `state`. Then:

1. the app logs the user in its own way and posts the user server-to-server, either
   `POST /api/v1/connections/{conn}/auth-requests/{login_request_id}/user` with a JSON body
   `{sub, email, ...}` and `Authorization: Bearer <client_credentials token of the environment
   client>`, or the SDK's `auth.update_login_user_details(...)` (gRPC, services/auth.py);
2. the app sends the browser to `/sso/v1/connections/{conn}/partner:callback?state=<state>`, which
   continues as any MCP login: consent (approved at once with --auto-login), then the code and the
   redirect to the MCP client.

A replayed, unknown or expired `state`, or a callback before the user was posted, gets HTTP 400
`invalid_state`. The user endpoint answers 401 without a valid bearer token and 404 for an unknown
login request.
"""
from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import mcp_as, pages
from .oauth import NO_STORE, ctx_of
from .safe_input import loads_json

MAX_BODY = 16 * 1024


class BridgeError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def post_user_details(ctx, connection_id: str, login_request_id: str, details: dict) -> str:
    """Attach the app's user to a pending login request; returns the login request id.
    Shared by the HTTP endpoint and the gRPC AuthService.UpdateLoginUserDetails."""
    st = mcp_as.state(ctx)
    pending = st.by_login_request(login_request_id or "")
    if pending is None or st.resources[pending.resource_id].connection_id != connection_id:
        raise BridgeError(404, "not_found", f"no pending login request '{login_request_id}' for connection '{connection_id}'")
    if pending.expires_at < time.time():
        raise BridgeError(404, "not_found", f"login request '{login_request_id}' has expired")
    if pending.bridge_state_used:
        raise BridgeError(409, "conflict", f"login request '{login_request_id}' is already complete")
    email = str(details.get("email") or "").strip().lower()
    if "@" not in email:
        raise BridgeError(400, "invalid_request", "user.email is required")
    given = str(details.get("given_name") or "")
    family = str(details.get("family_name") or "")
    user = ctx.store.provision_user(email, None, given, family)
    with ctx.store.lock:
        if details.get("sub"):
            user.external_id = user.external_id or str(details["sub"])
        if details.get("name") and not user.name:
            user.name = str(details["name"])
    with st.lock:
        pending.session_id = None
        mcp_as.set_user(ctx, pending, user, connection_id)
    ctx.store.count("bridge.user_details")
    return login_request_id


def _bearer_ok(ctx, request: Request) -> bool:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() != "bearer ":
        return False
    claims = ctx.tokens.verify(auth[7:].strip())
    if claims is None or claims.get("iss") not in ctx.known_issuers() or ctx.store.is_revoked(claims.get("jti")):
        return False
    client = ctx.store.client(claims.get("client_id"))
    # A client_credentials token of the environment's own client (what the SDKs obtain).
    return client is not None and client.type == "environment" and claims.get("sub") == client.id


async def user_details(request: Request) -> Response:
    ctx = ctx_of(request)
    if not _bearer_ok(ctx, request):
        return JSONResponse({"error": "unauthenticated",
                             "error_description": "a Bearer client_credentials token of the environment client is required"},
                            status_code=401, headers={**NO_STORE, "WWW-Authenticate": 'Bearer realm="scalekit-local"'})
    body = await request.body()
    try:
        data = loads_json(body) if len(body) <= MAX_BODY else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return JSONResponse({"error": "invalid_request", "error_description": "the body must be a JSON object"},
                            status_code=400, headers=NO_STORE)
    details = data.get("user") if isinstance(data.get("user"), dict) else data  # both {user: {...}} and {...}
    try:
        lrid = post_user_details(ctx, request.path_params["conn"], request.path_params["lrid"], details)
    except BridgeError as exc:
        return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status,
                            headers=NO_STORE)
    return JSONResponse({"auth_request_id": lrid}, headers=NO_STORE)


def _invalid_state(request: Request, description: str) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"error": "invalid_state", "error_description": description}, status_code=400,
                            headers=NO_STORE)
    return pages.error_page("invalid_state", description, 400)


async def partner_callback(request: Request) -> Response:
    ctx = ctx_of(request)
    st = mcp_as.state(ctx)
    value = request.query_params.get("state") or ""
    if not value:
        return _invalid_state(request, "The state parameter is missing.")
    pending = st.by_bridge_state(value)
    if pending is None:
        return _invalid_state(request, "The state is unknown, was already used, or has expired. Start the login again.")
    if pending.expires_at < time.time():
        st.finish(pending.id)
        return _invalid_state(request, "The state has expired (login requests last 10 minutes). Start the login again.")
    if st.resources[pending.resource_id].connection_id != request.path_params["conn"]:
        return _invalid_state(request, "The state does not belong to this connection.")
    with st.lock:
        if pending.bridge_state_used:
            return _invalid_state(request, "The state was already used.")
        if pending.user_id is None:
            return _invalid_state(request, "The app has not posted the user details for this login request yet.")
        pending.bridge_state_used = True
    ctx.store.count("bridge.callback")
    return mcp_as.consent_or_approve(request, pending)


ROUTES = [
    Route("/api/v1/connections/{conn}/auth-requests/{lrid}/user", user_details, methods=["POST"]),
    Route("/sso/v1/connections/{conn}/partner:callback", partner_callback),
]
