"""OAuth 2.0 / OpenID Connect endpoints and the login pages, as one Starlette app.

Errors follow RFC 6749 and OIDC: the token endpoint answers JSON errors with 400/401; the authorize
endpoint shows an HTML error page (400) when the client or redirect URI cannot be trusted and
otherwise redirects back with `error`, `error_description` and `state`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import directory_sync, faults, hostile_idp, idp_initiated, pages, webhooks
from .webhooks import login_data
from .context import Context
from .store import STANDARD_SCOPES, AuthCode, AuthRequest, Client, User, new_id

log = logging.getLogger("scalekit_local.http")

AUTH_REQUEST_TTL = 600
MAX_BODY = 64 * 1024
PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
PROMPTS = {"none", "login", "consent", "select_account", "create"}
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


# ---- discovery and keys ------------------------------------------------------------------
async def openid_configuration(request: Request) -> Response:
    iss = issuer(request)
    doc = {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/oauth/authorize",
        "token_endpoint": f"{iss}/oauth/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/keys",
        "end_session_endpoint": f"{iss}/oidc/logout",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(STANDARD_SCOPES),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "email", "email_verified", "name", "given_name",
                             "family_name", "oid", "sid", "amr", "nonce", "roles", "permissions"],
        "prompt_values_supported": sorted(PROMPTS),
    }
    return JSONResponse(doc)


async def keys(request: Request) -> Response:
    ctx = ctx_of(request)
    ctx.store.count("keys")
    return JSONResponse(ctx.tokens.jwks, headers={"Cache-Control": "public, max-age=300"})


# ---- /oauth/authorize ----------------------------------------------------------------------
async def authorize(request: Request) -> Response:
    ctx = ctx_of(request)
    store = ctx.store
    store.count("authorize")
    params = await params_or_page(request)
    if isinstance(params, Response):
        return params

    from . import mcp_as
    if mcp_as.owns_client(ctx, params.get("client_id")):  # DCR / metadata-document clients of MCP resources
        return await mcp_as.authorize(request, params)

    # Until client and redirect URI are trusted, errors go to a page, never to a redirect.
    if params.repeated(("client_id", "redirect_uri")):
        return pages.error_page("invalid_request", f"'{params.repeated(('client_id', 'redirect_uri'))}' was sent more than once.")
    client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri")
    if not client_id:
        return pages.error_page("invalid_request", "The client_id parameter is missing.")
    client = store.client(client_id)
    if client is None or client.type != "environment":
        return pages.error_page("invalid_client", f"Unknown client_id '{client_id}'.")
    if not redirect_uri:
        return pages.error_page("invalid_request", "The redirect_uri parameter is missing.")
    if redirect_uri not in client.redirect_uris:
        return pages.error_page("invalid_request",
                                f"The redirect_uri '{redirect_uri}' is not registered for this client (exact match required).")

    state = params.get("state")
    back = (redirect_uri, state)
    repeated = params.repeated(("response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method",
                                "prompt", "login_hint", "organization_id", "connection_id", "provider", "domain_hint", "domain"))
    if repeated:
        return error_redirect(back, "invalid_request", f"'{repeated}' was sent more than once")
    response_type = params.get("response_type")
    if not response_type:
        return error_redirect(back, "invalid_request", "response_type is required")
    if response_type != "code":
        return error_redirect(back, "unsupported_response_type", "only response_type=code is supported")

    scopes = (params.get("scope") or "").split()
    if not scopes:
        return error_redirect(back, "invalid_scope", "scope is required and must include openid")
    unknown = [s for s in scopes if s not in STANDARD_SCOPES and s not in client.scopes]
    if unknown:
        return error_redirect(back, "invalid_scope", f"unknown scope: {' '.join(unknown)}")
    if "openid" not in scopes:
        return error_redirect(back, "invalid_scope", "scope must include openid")

    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if method and not challenge:
        return error_redirect(back, "invalid_request", "code_challenge_method was sent without code_challenge")
    if challenge:
        if method != "S256":
            return error_redirect(back, "invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
        if not PKCE_CHALLENGE.match(challenge):
            return error_redirect(back, "invalid_request", "code_challenge must be a base64url SHA-256 digest (43 characters)")

    prompts = set((params.get("prompt") or "").split())
    if prompts - PROMPTS:
        return error_redirect(back, "invalid_request", f"unsupported prompt: {' '.join(sorted(prompts - PROMPTS))}")
    if "none" in prompts and len(prompts) > 1:
        return error_redirect(back, "invalid_request", "prompt=none cannot be combined with other values")

    org_id, conn_id, provider = params.get("organization_id"), params.get("connection_id"), params.get("provider")
    if org_id and store.organization(org_id) is None:
        return error_redirect(back, "invalid_request", f"unknown organization_id '{org_id}'")
    connection = None
    if conn_id:
        connection = store.connection(conn_id)
        if connection is None or not connection.enabled:
            return error_redirect(back, "invalid_request", f"unknown or disabled connection_id '{conn_id}'")
    if provider:
        provider = provider.lower()
        if provider not in store.providers or not store.providers[provider].enabled:
            return error_redirect(back, "invalid_request", f"provider '{provider}' is not enabled")
    login_hint = params.get("login_hint")
    domain = (params.get("domain_hint") or params.get("domain") or "").strip().lower() or None

    req = AuthRequest(
        id="areq_" + secrets.token_urlsafe(18), client_id=client.id, redirect_uri=redirect_uri, scopes=scopes,
        state=state, nonce=params.get("nonce"), code_challenge=challenge, prompt=params.get("prompt"),
        login_hint=login_hint, organization_id=org_id, expires_at=time.time() + AUTH_REQUEST_TTL,
    )

    # Headless login (--auto-login): everything above was still checked.
    if ctx.auto_login_user_id:
        user = store.users[ctx.auto_login_user_id]
        if connection is not None:
            return complete_login(request, req, user, connection.id, connection.organization_id)
        if provider:
            return complete_login(request, req, user, store.providers[provider].connection_id, None)
        return complete_login(request, req, user, store.password_connection_id, None)

    # An existing browser session is reused unless the app asks for a fresh login or a route.
    session = store.active_session(request.cookies.get(ctx.cookie_name))
    routed = bool(connection or provider or domain)
    fresh_login = prompts & {"login", "consent", "select_account", "create"}
    if session and not routed and not fresh_login and org_id in (None, session.organization_id):
        user = store.users.get(session.user_id)
        if user is not None:
            return complete_login(request, req, user, session.connection_id, session.organization_id, session.id)
    if "none" in prompts:
        return error_redirect(req, "login_required", "no active session; prompt=none forbids showing a login page")

    store.add_auth_request(req)
    if connection is None and org_id:
        connection = store.connection_for_organization(org_id)
    if connection is None and domain:
        connection = store.connection_for_domain(domain)
    if connection is None and login_hint and "@" in login_hint:
        connection = store.connection_for_domain(login_hint.rsplit("@", 1)[1])
    if connection is not None:
        return redirect(f"/ui/idp?{urlencode({'r': req.id, 'connection_id': connection.id})}")
    if provider:
        return redirect(f"/ui/social?{urlencode({'r': req.id, 'provider': provider})}")
    return redirect(f"/ui/login?{urlencode({'r': req.id})}")


def complete_login(request: Request, req: AuthRequest, user: User, connection_id: str, org_id: str | None,
                   session_id: str | None = None) -> Response:
    """Issue the authorization code and send the browser back to the app."""
    ctx = ctx_of(request)
    store = ctx.store
    if req.organization_id:
        if user.membership(req.organization_id) is None:
            store.finish_auth_request(req.id)
            return error_redirect(req, "access_denied", f"{user.email} is not a member of organization {req.organization_id}")
        org_id = req.organization_id
    if org_id is None or user.membership(org_id) is None:
        org_id = user.memberships[0].organization_id if user.memberships else None
    store.accept_invitation(user, org_id)
    if session_id is None:
        session_id = store.create_session(user.id, org_id, connection_id).id
    code = AuthCode(
        code=secrets.token_urlsafe(32), client_id=req.client_id, redirect_uri=req.redirect_uri, user_id=user.id,
        organization_id=org_id, session_id=session_id, connection_id=connection_id, scopes=req.scopes,
        nonce=req.nonce, code_challenge=req.code_challenge, expires_at=time.time() + ctx.code_ttl,
    )
    store.add_code(code)
    store.finish_auth_request(req.id)
    store.count("logins")
    store.events.emit("user.login", login_data(user, store.sessions[session_id]), organization_id=org_id)
    response = redirect(with_query(req.redirect_uri, {"code": code.code, "state": req.state}))
    set_session_cookie(response, ctx, session_id)
    return response


# ---- login pages -----------------------------------------------------------------------------
def _pending(request: Request, request_id: str | None) -> tuple[AuthRequest | None, Response | None]:
    return found_or_page(ctx_of(request).store.auth_request(request_id or ""),
                         "This login request is unknown or has expired. Start the login again from the application.")


def _login_page(request: Request, req: AuthRequest, email: str = "", error: str | None = None, status: int = 200):
    store = ctx_of(request).store
    client = store.client(req.client_id)
    return pages.render(
        "login.html", "Sign in", status,
        raw={"error": pages.error_html(error), "providers": pages.provider_buttons(req.id, store.enabled_providers())},
        client_name=client.name or client.id, request_id=req.id, email=email or req.login_hint or "",
    )


async def login_page(request: Request) -> Response:
    req, problem = _pending(request, request.query_params.get("r"))
    return problem or _login_page(request, req)


async def login_submit(request: Request) -> Response:
    submitted = await submitted_form(request, _pending, "r")
    if isinstance(submitted, Response):
        return submitted
    form, req = submitted
    store = ctx_of(request).store
    email = (form.get("email") or "").strip()
    user = store.user_by_email(email) if email else None
    if user is None or not user.password_matches(form.get("password") or ""):
        store.count("login_failures")
        return _login_page(request, req, email, "Incorrect email or password.", 401)
    return complete_login(request, req, user, store.password_connection_id, None)


async def sso_submit(request: Request) -> Response:
    submitted = await submitted_form(request, _pending, "r")
    if isinstance(submitted, Response):
        return submitted
    form, req = submitted
    email = (form.get("email") or "").strip()
    connection = ctx_of(request).store.connection_for_domain(email.rsplit("@", 1)[-1]) if "@" in email else None
    if connection is None:
        return _login_page(request, req, email, "No single sign-on connection is set up for this email domain.", 400)
    return redirect(f"/ui/idp?{urlencode({'r': req.id, 'connection_id': connection.id, 'login_hint': email})}", 303)


def _idp_page(request: Request, req: AuthRequest, connection, email: str = "", error: str | None = None, status: int = 200):
    store = ctx_of(request).store
    org = store.organization(connection.organization_id)
    if not email:
        email = req.login_hint or next(
            (u.email for u in store.users.values() if u.email.rsplit("@", 1)[1] in connection.domains), "")
    label = connection.provider.replace("_", " ").title()
    return pages.render(
        "idp.html", f"{label} ({connection.type})", status, raw={"error": pages.error_html(error)},
        provider_label=f"{label} sign-in", connection_type=connection.type, connection_id=connection.id,
        organization_name=org.display_name if org else connection.organization_id,
        organization_id=connection.organization_id, domains=", ".join(connection.domains) or "(none)",
        request_id=req.id, email=email,
    )


async def idp_page(request: Request) -> Response:
    req, problem = _pending(request, request.query_params.get("r"))
    if problem:
        return problem
    connection = ctx_of(request).store.connection(request.query_params.get("connection_id"))
    if connection is None or not connection.enabled:
        return pages.error_page("invalid_request", "Unknown or disabled connection.")
    return _idp_page(request, req, connection, request.query_params.get("login_hint") or "")


async def idp_submit(request: Request) -> Response:
    submitted = await submitted_form(request, _pending, "r")
    if isinstance(submitted, Response):
        return submitted
    form, req = submitted
    store = ctx_of(request).store
    connection = store.connection(form.get("connection_id"))
    if connection is None or not connection.enabled:
        return pages.error_page("invalid_request", "Unknown or disabled connection.")
    if form.get("action") == "cancel":
        store.finish_auth_request(req.id)
        return error_redirect(req, "access_denied", "the user cancelled the login at the identity provider")
    email = (form.get("email") or "").strip().lower()
    if "@" not in email or (email.rsplit("@", 1)[1] not in connection.domains
                            and not hostile_idp.asserts_any_email(store, connection.id)):
        return _idp_page(request, req, connection, email, "This identity provider only signs in users of: "
                         + (", ".join(connection.domains) or "no domains"), 400)
    user = store.provision_user(email, connection.organization_id)
    return complete_login(request, req, user, connection.id, connection.organization_id)


async def social_page(request: Request) -> Response:
    req, problem = _pending(request, request.query_params.get("r"))
    if problem:
        return problem
    return _social_page(request, req, request.query_params.get("provider") or "")


def _social_page(request: Request, req: AuthRequest, provider: str, email: str = "", error: str | None = None,
                 status: int = 200) -> Response:
    store = ctx_of(request).store
    if provider not in store.providers or not store.providers[provider].enabled:
        return pages.error_page("invalid_request", "This social login provider is not enabled.")
    client = store.client(req.client_id)
    return pages.render(
        "social.html", f"Sign in with {pages.PROVIDER_LABELS[provider]}", status, raw={"error": pages.error_html(error)},
        provider_label=pages.PROVIDER_LABELS[provider], provider=provider, client_name=client.name or client.id,
        request_id=req.id, email=email or req.login_hint or "",
    )


async def social_submit(request: Request) -> Response:
    submitted = await submitted_form(request, _pending, "r")
    if isinstance(submitted, Response):
        return submitted
    form, req = submitted
    store = ctx_of(request).store
    provider = form.get("provider") or ""
    if provider not in store.providers or not store.providers[provider].enabled:
        return pages.error_page("invalid_request", "This social login provider is not enabled.")
    if form.get("action") == "cancel":
        store.finish_auth_request(req.id)
        return error_redirect(req, "access_denied", f"the user did not allow access at {provider}")
    email = (form.get("email") or "").strip().lower()
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        return _social_page(request, req, provider, email, "Enter a valid email address.", 400)
    user = store.provision_user(email, None)
    return complete_login(request, req, user, store.providers[provider].connection_id, None)


# ---- /oauth/token ----------------------------------------------------------------------------
async def token(request: Request) -> Response:
    ctx = ctx_of(request)
    try:
        params = Params(await read_form(request))
        repeated = params.repeated(("grant_type", "client_id", "client_secret", "code", "redirect_uri",
                                    "code_verifier", "refresh_token", "scope"))
        if repeated:
            raise OAuthError("invalid_request", f"'{repeated}' was sent more than once")
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        handler = GRANTS.get(grant_type)
        if handler is None:
            raise OAuthError("unsupported_grant_type", f"grant_type '{grant_type}' is not supported")
        from . import mcp_as
        mcp_client_id, _ = mcp_as.presented_client_id(request, params)
        if mcp_as.owns_client(ctx, mcp_client_id):  # DCR / metadata-document clients of MCP resources
            body = await mcp_as.token(request, ctx, params, grant_type)
        else:
            client = authenticate_client(ctx, params)
            ctx.store.count(f"token.{grant_type}")
            body = handler(request, ctx, client, params)
    except OAuthError as exc:
        ctx.store.count("token.errors")
        return json_error(exc.error, exc.description, exc.status)
    return JSONResponse(body, headers=NO_STORE)


def authenticate_client(ctx: Context, params: Params) -> Client:
    """client_secret_post. An `Authorization: Bearer` header (the Python SDK sends one) is ignored."""
    client_id, secret = params.get("client_id"), params.get("client_secret")
    if not client_id or not secret:
        raise OAuthError("invalid_client", "client_id and client_secret are required in the form body", 401)
    client = ctx.store.client(client_id)
    if client is None or not client.secret_matches(secret):
        raise OAuthError("invalid_client", "client authentication failed", 401)
    return client


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


def grant_authorization_code(request: Request, ctx: Context, client: Client, params: Params) -> dict:
    if client.type != "environment":
        raise OAuthError("unauthorized_client", "this client may not use the authorization_code grant")
    code, redirect_uri, verifier = params.get("code"), params.get("redirect_uri"), params.get("code_verifier")
    if not code:
        raise OAuthError("invalid_request", "code is required")
    if not redirect_uri:
        raise OAuthError("invalid_request", "redirect_uri is required")
    if verifier is not None and not PKCE_VERIFIER.match(verifier):
        raise OAuthError("invalid_request", "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")
    entry, problem = ctx.store.take_code(code)
    check_taken_code(entry, problem, client.id)
    if entry.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    if entry.code_challenge:
        if verifier is None:
            raise OAuthError("invalid_grant", "code_verifier is required (PKCE was used in the authorization request)")
        if not hmac.compare_digest(s256(verifier), entry.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    elif verifier is not None:
        raise OAuthError("invalid_grant", "code_verifier was sent but the authorization request had no code_challenge")
    user = code_user(ctx, entry)

    access, id_token = ctx.tokens.user_tokens(issuer(request), ctx.store, client, user, entry.organization_id,
                                              entry.session_id, entry.connection_id, entry.scopes, entry.nonce)
    remember_access_token(entry, access)
    body = {"access_token": access, "id_token": id_token, "token_type": "Bearer",
            "expires_in": ctx.tokens.access_token_ttl, "scope": " ".join(entry.scopes)}
    if "offline_access" in entry.scopes:
        entry.family_id = new_id("rtf")
        body["refresh_token"] = ctx.store.issue_refresh_token(entry.family_id, client.id, user.id, entry.organization_id,
                                                              entry.session_id, entry.connection_id, entry.scopes)
    return body


def grant_refresh_token(request: Request, ctx: Context, client: Client, params: Params) -> dict:
    if client.type != "environment":
        raise OAuthError("unauthorized_client", "this client may not use the refresh_token grant")
    presented = params.get("refresh_token")
    if not presented:
        raise OAuthError("invalid_request", "refresh_token is required")
    rt, problem = ctx.store.use_refresh_token(presented, client.id)
    if rt is None:
        raise OAuthError("invalid_grant", problem)
    scopes, user = refresh_scopes_and_user(ctx, params, rt)
    access, id_token = ctx.tokens.user_tokens(issuer(request), ctx.store, client, user, rt.organization_id,
                                              rt.session_id, rt.connection_id, scopes, None)
    new_refresh = ctx.store.issue_refresh_token(rt.family_id, client.id, user.id, rt.organization_id, rt.session_id,
                                                rt.connection_id, rt.scopes)
    return {"access_token": access, "id_token": id_token, "refresh_token": new_refresh, "token_type": "Bearer",
            "expires_in": ctx.tokens.access_token_ttl, "scope": " ".join(scopes)}


def grant_client_credentials(request: Request, ctx: Context, client: Client, params: Params) -> dict:
    asked = (params.get("scope") or "").split()
    if asked:
        unknown = [s for s in asked if s not in client.scopes]
        if unknown:
            raise OAuthError("invalid_scope", f"scope not allowed for this client: {' '.join(unknown)}")
        scopes = asked
    else:
        scopes = list(client.scopes)
    body = {"access_token": ctx.tokens.client_token(issuer(request), client, scopes), "token_type": "Bearer",
            "expires_in": ctx.tokens.client_ttl(client)}
    if scopes:
        body["scope"] = " ".join(scopes)
    return body


GRANTS = {
    "authorization_code": grant_authorization_code,
    "refresh_token": grant_refresh_token,
    "client_credentials": grant_client_credentials,
}


# ---- /oidc/logout and /userinfo ----------------------------------------------------------------
async def logout(request: Request) -> Response:
    ctx = ctx_of(request)
    store = ctx.store
    store.count("logout")
    params = await params_or_page(request)
    if isinstance(params, Response):
        return params
    repeated = params.repeated(("id_token_hint", "post_logout_redirect_uri", "state", "client_id"))
    if repeated:
        return pages.error_page("invalid_request", f"'{repeated}' was sent more than once.")

    hint_claims = None
    hint = params.get("id_token_hint")
    if hint:
        # An expired ID token is still a fine hint; a forged or foreign one is not.
        hint_claims = ctx.tokens.verify(hint, verify_exp=False)
        if hint_claims is None or hint_claims.get("iss") not in ctx.known_issuers():
            return pages.error_page("invalid_request", "id_token_hint is not an ID token issued by this environment.")
    client = None
    client_id = params.get("client_id")
    if hint_claims is not None:
        client = store.client(hint_claims.get("azp") or (hint_claims.get("aud") or [None])[0])
        if client_id and client and client_id != client.id:
            return pages.error_page("invalid_request", "client_id does not match the id_token_hint audience.")
    elif client_id:
        client = store.client(client_id)
        if client is None:
            return pages.error_page("invalid_client", f"Unknown client_id '{client_id}'.")

    target = params.get("post_logout_redirect_uri")
    if target:
        if client is None:
            return pages.error_page("invalid_request", "post_logout_redirect_uri needs id_token_hint or client_id.")
        if target not in client.post_logout_redirect_uris:
            return pages.error_page("invalid_request",
                                    f"post_logout_redirect_uri '{target}' is not registered for this client.")

    # Only the browser's session cookie names the session to end: a server-side call to this URL
    # carries no cookie and ends nothing, as on hosted Scalekit (authenticate/fsa/logout.mdx).
    session_id = request.cookies.get(ctx.cookie_name)
    if session_id:
        store.end_session(session_id)
    if target:
        response: Response = redirect(with_query(target, {"state": params.get("state")}))
    else:
        response = pages.message_page("Signed out", "You are signed out of the local Scalekit environment.")
    response.delete_cookie(ctx.cookie_name, path="/")
    return response


async def userinfo(request: Request) -> Response:
    ctx = ctx_of(request)
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return JSONResponse({"error": "invalid_request", "error_description": "a Bearer access token is required"},
                            status_code=401, headers={"WWW-Authenticate": 'Bearer realm="scalekit-local"'})
    claims = ctx.tokens.verify(auth[7:].strip())
    session = ctx.store.active_session(claims.get("sid")) if claims else None
    user = ctx.store.users.get(claims.get("sub", "")) if claims else None
    if claims is None or ctx.store.is_revoked(claims.get("jti")) or session is None or user is None:
        return json_error("invalid_token", "the access token is invalid, expired or its session has ended", 401)
    info = {"sub": user.id, "email": user.email, "email_verified": user.email_verified, "name": user.display_name}
    if user.given_name:
        info["given_name"] = user.given_name
    if user.family_name:
        info["family_name"] = user.family_name
    if claims.get("oid"):
        info["oid"] = claims["oid"]
    return JSONResponse(info, headers=NO_STORE)


# ---- reserved admin routes (/_local/) ----------------------------------------------------------
async def local_health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def local_stats(request: Request) -> Response:
    return JSONResponse(ctx_of(request).store.snapshot_stats())


# ---- app ---------------------------------------------------------------------------------------
class CollapseSlashes:
    """`https://host//oauth/token` (an env URL with a trailing slash) reaches the same route."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = dict(scope)
            scope["path"] = re.sub(r"/{2,}", "/", scope["path"])
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


async def not_found(request: Request, exc) -> Response:
    status = getattr(exc, "status_code", 404)
    return JSONResponse({"error": "not_found" if status == 404 else "method_not_allowed",
                         "error_description": f"{request.method} {request.url.path} is not served here"},
                        status_code=status)


async def server_error(request: Request, exc) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": "server_error", "error_description": "internal error in the local environment"},
                        status_code=500)


def build_app(ctx: Context) -> Starlette:
    routes = [
        Route("/.well-known/openid-configuration", openid_configuration),
        Route("/keys", keys),
        Route("/oauth/authorize", authorize, methods=["GET", "POST"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oidc/logout", logout, methods=["GET", "POST"]),
        Route("/userinfo", userinfo, methods=["GET", "POST"]),
        Route("/ui/login", login_page),
        Route("/ui/login", login_submit, methods=["POST"]),
        Route("/ui/sso", sso_submit, methods=["POST"]),
        Route("/ui/idp", idp_page),
        Route("/ui/idp", idp_submit, methods=["POST"]),
        Route("/ui/social", social_page),
        Route("/ui/social", social_submit, methods=["POST"]),
        Route("/_local/health", local_health),
        Route("/_local/stats", local_stats),
        *webhooks.routes(), *faults.routes(), *directory_sync.routes(), *idp_initiated.routes(),
    ]
    from . import bridge, mcp_as, token_matrix
    routes += mcp_as.ROUTES + bridge.ROUTES + token_matrix.ROUTES
    from . import portal  # management API: admin portal page and admin routes

    routes += portal.routes()
    from . import mailbox  # passwordless emails and invitations, readable at /_local/mailbox

    routes += mailbox.routes()
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, 500: server_error})
    app.state.ctx = ctx
    app.add_middleware(faults.FaultMiddleware)  # inside CollapseSlashes: matches normalised paths
    from .admin_guard import AdminGuard

    app.add_middleware(AdminGuard)  # /_local/ refuses cross-site requests (admin_guard.py)
    from .persistence import ChangeMarker

    app.add_middleware(ChangeMarker)  # --persist: compare management objects after a change
    app.add_middleware(CollapseSlashes)
    return app
