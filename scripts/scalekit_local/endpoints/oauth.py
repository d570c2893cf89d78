"""What the OAuth endpoints share (oidc.py, login.py, mcp_as.py, bridge.py): reading parameters that
notice repeated keys, OAuth errors as JSON or as a redirect, error pages for what must not be
redirected, the browser session cookie, PKCE, and the checks of a code or refresh token at the token
endpoint.

Errors follow RFC 6749 and OIDC: the token endpoint answers JSON errors with 400/401; the authorize
endpoint shows an HTML error page (400) when the client or redirect URI cannot be trusted and
otherwise redirects back with `error`, `error_description` and `state`.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..domain.context import Context
from ..state.records import User
from . import pages

MAX_BODY = 64 * 1024
PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


# ---- request helpers ---------------------------------------------------------------------
class Params:
    """Request parameters (query string or form body) that notice repeated keys."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.values: dict[str, list[str]] = {}
        for key, value in pairs:
            self.values.setdefault(key, []).append(value)

    def get(self, key: str) -> str | None:
        values = self.values.get(key)
        return values[0] if values else None

    def repeated(self, keys) -> str | None:
        return next((k for k in keys if len(self.values.get(k, [])) > 1), None)


async def read_form(request: Request) -> list[tuple[str, str]]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the request body must be application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise OAuthError("invalid_request", "the request body is too large")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the request body is not valid form data") from None


async def request_params(request: Request) -> Params:
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        pairs += await read_form(request)
    return Params(pairs)


def ctx_of(request: Request) -> Context:
    return request.app.state.ctx


def issuer(request: Request) -> str:
    return ctx_of(request).issuer_for(request.headers.get("host"))


def json_error(error: str, description: str, status: int = 400) -> JSONResponse:
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="scalekit-local"' if error == "invalid_client" else \
            f'Bearer error="{error}", error_description="{description}"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def with_query(uri: str, params: dict[str, str | None]) -> str:
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def redirect(uri: str, status: int = 302) -> RedirectResponse:
    return RedirectResponse(uri, status_code=status, headers={"Cache-Control": "no-store"})


def error_redirect(req, error: str, description: str, iss: str | None = None) -> RedirectResponse:
    """Send the error back to the client: `req` is a pending request (AuthRequest, mcp_as.Pending) or a
    (redirect_uri, state) pair. `iss` (RFC 9207, MCP clients) is left out when None."""
    uri, state = req if isinstance(req, tuple) else (req.redirect_uri, req.state)
    return redirect(with_query(uri, {"error": error, "error_description": description, "state": state, "iss": iss}))


def set_session_cookie(response: Response, ctx: Context, session_id: str) -> None:
    response.set_cookie(ctx.cookie_name, session_id, httponly=True, samesite="lax", secure=ctx.tls, path="/")


# HTML handlers answer a malformed request with an error page rather than a JSON error.
async def params_or_page(request: Request) -> Params | Response:
    try:
        return await request_params(request)
    except OAuthError as exc:
        return pages.error_page(exc.error, exc.description)


async def form_or_page(request: Request) -> Params | Response:
    """The form body only (not the query string) of a page's POST."""
    try:
        return Params(await read_form(request))
    except OAuthError as exc:
        return pages.error_page(exc.error, exc.description)


def found_or_page(pending, expired_message: str) -> tuple[object | None, Response | None]:
    """(pending, None), or (None, an error page) when the pending request is unknown or has expired."""
    if pending is None:
        return None, pages.error_page("invalid_request", expired_message)
    return pending, None


async def submitted_form(request: Request, find_pending, key: str) -> tuple[Params, object] | Response:
    """A page's posted form and the pending request its field `key` names (find_pending(request, id) ->
    (pending, error page)), or the error page to answer with instead."""
    form = await form_or_page(request)
    if isinstance(form, Response):
        return form
    pending, problem = find_pending(request, form.get(key))
    return problem or (form, pending)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


# ---- the token endpoint: codes and refresh tokens (oidc.py and mcp_as.py) ---------------------
def check_taken_code(entry, problem: str, client_id: str) -> None:
    """What store.take_code / McpState.take_code found, as the token endpoint's error."""
    if entry is None:
        raise OAuthError("invalid_grant", "authorization code is invalid")
    if problem == "used":
        raise OAuthError("invalid_grant", "authorization code was already used")
    if problem == "expired":
        raise OAuthError("invalid_grant", "authorization code has expired")
    if entry.client_id != client_id:
        raise OAuthError("invalid_grant", "authorization code was issued to another client")


def remember_access_token(entry, access_token: str) -> None:
    """Note which access token a code's exchange issued, so that a replay of the code revokes it."""
    payload = access_token.split(".")[1]  # we just signed it: no need to verify (and cheaper than PyJWT)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    entry.access_jti, entry.access_exp = claims.get("jti"), claims.get("exp")


def code_user(ctx: Context, entry) -> User:
    user = ctx.store.users.get(entry.user_id)
    if user is None or ctx.store.active_session(entry.session_id) is None:
        raise OAuthError("invalid_grant", "the login session of this code has ended")
    return user


def refresh_scopes_and_user(ctx: Context, params: Params, rt) -> tuple[list[str], User]:
    """The scopes of a refresh (a `scope` parameter may only narrow the original grant) and its user."""
    scopes = rt.scopes
    if params.get("scope"):
        asked = params.get("scope").split()
        if not set(asked) <= set(rt.scopes):
            raise OAuthError("invalid_scope", "a refresh can only narrow the scopes of the original grant")
        scopes = asked
    user = ctx.store.users.get(rt.user_id)
    if user is None:
        raise OAuthError("invalid_grant", "the user of this refresh token no longer exists")
    return scopes, user
