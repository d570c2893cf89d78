"""MCP authorization server: OAuth 2.1 for MCP resources (res_...), shaped like Scalekit's.

Per resource of the seed (`resources:`): RFC 8414 / OIDC metadata whose issuer is
`{ENV}/resources/{res_id}` (served at the path-inserted and the path-suffixed well-known URLs),
dynamic client registration (RFC 7591, `POST /resources/{res_id}/register`, ids `m2m_...`), Client ID
Metadata Documents (the client_id is an https URL, or a loopback http(s) URL for local testing, that
this server fetches), and the authorization-code flow through the environment's own
`/oauth/authorize` and `/oauth/token`: PKCE S256 required, RFC 8707 `resource` (must be one of the
resource's registered URLs), a consent page, RFC 9207 `iss` on the redirect, and refresh tokens
rotated by the store's refresh machinery. oidc.py hands a request here when its client_id belongs
to an MCP client (see `owns_client`).

Access tokens: `iss` is the environment URL (as live Scalekit issues today; a resource's
`token_issuer: resource` switches it to `{ENV}/resources/{res_id}`), `aud` = [res_id, resource URL],
`sub`, `client_id`, `jti`, `sid`, `oid`, `iat`, `nbf`, `exp` and `scope` (a string; no `scopes` array).

Clients registered here (DCR) or named by a metadata document (CIMD) are public: no secret
(authenticate/mcp/managing-mcp-clients.mdx). A registration that asks for a secret-based method gets
a public client (RFC 7591 §3.2.1). The resource paths serve OAuth metadata but not
`openid-configuration` (404, authenticate/mcp/xmcp-quickstart.mdx).

With --auto-login the seeded user is signed in and consent is approved without a page. A resource
with `custom_auth` sends the browser to the app's own login page instead (bridge.py).
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import secrets
import time
from urllib.parse import unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..domain.mcp import is_loopback_host, redirect_uri_problem, set_user
from ..ids import new_id
from ..safe_input import loads_json, split_url
from ..state.records import MCP_PENDING_TTL, McpClient, McpCode, Pending, Resource
from . import pages
from .oauth import (NO_STORE, PKCE_CHALLENGE, PKCE_VERIFIER, OAuthError, Params, check_taken_code, code_user, ctx_of,
                    error_redirect, found_or_page, issuer, redirect, refresh_scopes_and_user, remember_access_token,
                    s256, set_session_cookie, submitted_form, with_query)

log = logging.getLogger("scalekit_local.mcp")

CIMD_CACHE_SECONDS = 300
CIMD_MAX_BYTES = 16 * 1024
CIMD_FETCH_TIMEOUT = 5.0
MAX_REGISTRATION_BYTES = 16 * 1024
AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")  # what a registration may ask for
ISSUED_AUTH_METHODS = ["none"]  # what it gets: DCR and CIMD clients are public


def resource_issuer(base: str, resource: Resource) -> str:
    return f"{base}/resources/{resource.id}"


# ---- redirect URIs and clients -----------------------------------------------------------------
def is_cimd_client_id(client_id: str | None) -> bool:
    return bool(client_id) and client_id.startswith(("https://", "http://"))


def owns_client(ctx, client_id: str | None) -> bool:
    """True when oidc.py should hand the request to this module."""
    if not client_id:
        return False
    if is_cimd_client_id(client_id):
        return True
    st = ctx.store.mcp
    with st.lock:
        return client_id in st.clients


def cimd_url_problem(url: str) -> str | None:
    parts = split_url(url)
    if parts is None:
        return "a client ID metadata document URL must be a well-formed URL (host, port)"
    if parts.fragment or parts.username or parts.password:
        return "a client ID metadata document URL must not have a fragment or credentials"
    if parts.path in ("", "/"):
        return "a client ID metadata document URL must have a path"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return None  # local testing only
    return "a client ID metadata document URL must be https (or http on a loopback host, for local testing)"


async def resolve_client(ctx, client_id: str) -> tuple[McpClient | None, str]:
    """(client, "") or (None, why). CIMD documents are fetched and cached for 5 minutes."""
    st = ctx.store.mcp
    if not is_cimd_client_id(client_id):
        with st.lock:
            client = st.clients.get(client_id)
        return (client, "") if client else (None, f"unknown client_id '{client_id}'")
    if not any(r.cimd for r in st.resources.values()):
        return None, "client ID metadata documents are not enabled for any resource of this environment"
    problem = cimd_url_problem(client_id)
    if problem:
        return None, problem
    with st.lock:
        cached = st.clients.get(client_id)
    if cached and time.time() - cached.fetched_at < CIMD_CACHE_SECONDS:
        return cached, ""
    doc, problem = await fetch_metadata_document(client_id)
    if problem:
        return None, f"the client ID metadata document {client_id} could not be used: {problem}"
    client = McpClient(id=client_id, resource_id=None, redirect_uris=list(doc["redirect_uris"]),
                       name=str(doc.get("client_name") or client_id), auth_method="none", metadata=doc,
                       fetched_at=time.time())
    with st.lock:
        st.clients[client_id] = client
    ctx.store.count("mcp.cimd_fetch")
    return client, ""


async def fetch_metadata_document(url: str) -> tuple[dict | None, str]:
    body, problem = await fetch_bounded(url)
    if problem:
        return None, problem
    try:
        doc = loads_json(body)
    except ValueError:
        return None, "the document is not JSON"
    if not isinstance(doc, dict):
        return None, "the document is not a JSON object"
    if doc.get("client_id") != url:
        return None, f"its client_id {doc.get('client_id')!r} is not the document's URL"
    uris = doc.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        return None, "redirect_uris is missing or empty"
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem:
            return None, problem
    method = doc.get("token_endpoint_auth_method", "none")
    if method != "none":
        return None, f"token_endpoint_auth_method {method!r} is not supported for metadata-document clients (use none)"
    if "client_secret" in doc:
        return None, "a client ID metadata document must not contain client_secret"
    return doc, ""


async def fetch_bounded(url: str) -> tuple[bytes, str]:
    """(body, "") or (b"", why): one GET that gives up after CIMD_FETCH_TIMEOUT seconds in total (a
    server dripping bytes cannot extend it) and stops reading past CIMD_MAX_BYTES."""
    import httpx

    body = bytearray()
    try:
        async with asyncio.timeout(CIMD_FETCH_TIMEOUT):
            async with httpx.AsyncClient(timeout=CIMD_FETCH_TIMEOUT, follow_redirects=False) as client:
                # identity: a compressed document must not expand past the limit within one read
                headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
                async with client.stream("GET", url, headers=headers) as response:
                    if response.status_code != 200:
                        return b"", f"fetch answered HTTP {response.status_code}"
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > CIMD_MAX_BYTES:
                            return b"", f"the document is larger than {CIMD_MAX_BYTES} bytes"
    except TimeoutError:
        return b"", f"the fetch took longer than {CIMD_FETCH_TIMEOUT:g} s"
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, ValueError) as exc:
        return b"", f"fetch failed ({type(exc).__name__}: {exc or 'no answer'})"
    return bytes(body), ""


# ---- metadata and registration ---------------------------------------------------------------
def _resource_or_404(request: Request) -> Resource | Response:
    res_id = request.path_params["res_id"]
    resource = ctx_of(request).store.mcp.resources.get(res_id)
    if resource is None:
        return JSONResponse({"error": "not_found", "error_description": f"no MCP resource '{res_id}' in this environment"},
                            status_code=404)
    return resource


async def metadata(request: Request) -> Response:
    resource = _resource_or_404(request)
    if isinstance(resource, Response):
        return resource
    ctx_of(request).store.count("mcp.metadata")
    base = issuer(request)
    doc = {
        "issuer": resource_issuer(base, resource),
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "jwks_uri": f"{base}/keys",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": list(ISSUED_AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": [*resource.scopes, "offline_access"],
        "client_id_metadata_document_supported": resource.cimd,
        "authorization_response_iss_parameter_supported": True,
    }
    if resource.dcr:
        doc["registration_endpoint"] = f"{base}/resources/{resource.id}/register"
    return JSONResponse(doc, headers={"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"})


def _registration_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=NO_STORE)


async def register(request: Request) -> Response:
    """RFC 7591 dynamic client registration for one resource."""
    resource = _resource_or_404(request)
    if isinstance(resource, Response):
        return resource
    ctx = ctx_of(request)
    if not resource.dcr:
        return _registration_error("access_denied", f"dynamic client registration is disabled for {resource.id}", 403)
    body = await request.body()
    if len(body) > MAX_REGISTRATION_BYTES:
        return _registration_error("invalid_client_metadata", "the registration request is too large")
    try:
        meta = loads_json(body or b"null")
    except ValueError:
        return _registration_error("invalid_client_metadata", "the registration request must be a JSON object")
    if not isinstance(meta, dict):
        return _registration_error("invalid_client_metadata", "the registration request must be a JSON object")
    uris = meta.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        return _registration_error("invalid_redirect_uri", "redirect_uris is required and must be a non-empty array")
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem:
            return _registration_error("invalid_redirect_uri", problem)
    method = meta.get("token_endpoint_auth_method") or "client_secret_basic"  # RFC 7591 default
    if method not in AUTH_METHODS:
        return _registration_error("invalid_client_metadata",
                                   f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    grants = meta.get("grant_types") or ["authorization_code", "refresh_token"]
    if not isinstance(grants, list) or not set(grants) <= {"authorization_code", "refresh_token"}:
        return _registration_error("invalid_client_metadata",
                                   "grant_types may only contain authorization_code and refresh_token")
    responses = meta.get("response_types") or ["code"]
    if not isinstance(responses, list) or set(responses) != {"code"}:
        return _registration_error("invalid_client_metadata", "response_types must be [\"code\"]")
    scope = meta.get("scope")
    if scope is not None:
        if not isinstance(scope, str):
            return _registration_error("invalid_client_metadata", "scope must be a space-separated string")
        unknown = [s for s in scope.split() if s not in resource.allowed_scopes()]
        if unknown:
            return _registration_error("invalid_client_metadata", f"unknown scope: {' '.join(unknown)}")
    # Public client whatever was asked: RFC 7591 §3.2.1 lets the server replace requested metadata,
    # and clients read the method from this answer (claude.ai asks for client_secret_post).
    client = McpClient(id=new_id("m2m"), resource_id=resource.id, redirect_uris=list(uris),
                       name=str(meta.get("client_name") or ""), auth_method="none")
    answer = {k: v for k, v in meta.items() if k not in ("client_id", "client_secret", "client_secret_expires_at")}
    answer.update({
        "client_id": client.id, "client_id_issued_at": int(time.time()), "redirect_uris": list(uris),
        "token_endpoint_auth_method": "none", "grant_types": grants, "response_types": responses,
    })
    client.metadata = answer
    st = ctx.store.mcp
    with st.lock:
        st.clients[client.id] = client
    ctx.store.count("mcp.register")
    return JSONResponse(answer, status_code=201, headers=NO_STORE)


# ---- /oauth/authorize for MCP clients ------------------------------------------------------------
async def authorize(request: Request, params: Params) -> Response:
    ctx = ctx_of(request)
    st = ctx.store.mcp
    ctx.store.count("mcp.authorize")
    if params.repeated(("client_id", "redirect_uri")):
        return pages.error_page("invalid_request", f"'{params.repeated(('client_id', 'redirect_uri'))}' was sent more than once.")
    client_id, redirect_uri = params.get("client_id") or "", params.get("redirect_uri")
    client, problem = await resolve_client(ctx, client_id)
    if client is None:
        return pages.error_page("invalid_client", problem[:1].upper() + problem[1:] + ".")
    if not redirect_uri:
        if len(client.redirect_uris) != 1:
            return pages.error_page("invalid_request", "The redirect_uri parameter is missing.")
        redirect_uri = client.redirect_uris[0]
    if redirect_uri not in client.redirect_uris:
        return pages.error_page("invalid_request",
                                f"The redirect_uri '{redirect_uri}' is not registered for this client (exact match required).")

    base = issuer(request)
    back = (redirect_uri, params.get("state"))
    bound = st.resources.get(client.resource_id or "")
    iss = resource_issuer(base, bound) if bound else None
    repeated = params.repeated(("response_type", "scope", "state", "code_challenge", "code_challenge_method", "resource"))
    if repeated:
        return error_redirect(back, "invalid_request", f"'{repeated}' was sent more than once", iss)

    # RFC 8707: the resource must be one of the resource's registered URLs.
    asked = params.get("resource")
    if bound is not None:
        resource = bound
        if asked is not None and asked not in bound.urls:
            return error_redirect(back, "invalid_target",
                                   f"resource '{asked}' is not a registered URL of {bound.id} (expected one of: "
                                   f"{', '.join(bound.urls)})", iss)
        resource_url = asked or bound.urls[0]
    else:
        cimd_resources = [r for r in st.resources.values() if r.cimd]
        if asked is None:
            if len(cimd_resources) != 1:
                return error_redirect(back, "invalid_target", "the resource parameter is required", None)
            resource, resource_url = cimd_resources[0], cimd_resources[0].urls[0]
        else:
            resource, resource_url = st.resource_for_url(asked, cimd_only=True), asked
            if resource is None:
                return error_redirect(back, "invalid_target",
                                       f"resource '{asked}' is not a registered MCP server URL that accepts "
                                       "client ID metadata documents", None)
        iss = resource_issuer(base, resource)

    response_type = params.get("response_type")
    if response_type != "code":
        return error_redirect(back, "unsupported_response_type" if response_type else "invalid_request",
                               "response_type must be code", iss)
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if not challenge:
        return error_redirect(back, "invalid_request", "code_challenge is required (PKCE with S256)", iss)
    if method != "S256":
        return error_redirect(back, "invalid_request",
                               "code_challenge_method must be S256 (plain and a missing method are not accepted)", iss)
    if not PKCE_CHALLENGE.match(challenge):
        return error_redirect(back, "invalid_request", "code_challenge must be a base64url SHA-256 digest (43 characters)", iss)
    scopes = (params.get("scope") or "").split() or list(resource.scopes)
    unknown = [s for s in scopes if s not in resource.allowed_scopes()]
    if unknown:
        return error_redirect(back, "invalid_scope", f"unknown scope for {resource.id}: {' '.join(unknown)}", iss)

    pending = Pending(id="mreq_" + secrets.token_urlsafe(18), client_id=client.id, resource_id=resource.id,
                      resource_url=resource_url, redirect_uri=redirect_uri, scopes=scopes, state=params.get("state"),
                      code_challenge=challenge, base=base, expires_at=time.time() + MCP_PENDING_TTL)
    store = ctx.store
    if resource.login_url:  # custom auth: the app logs the user in (bridge.py)
        pending.login_request_id = "lri_" + secrets.token_urlsafe(18)
        pending.bridge_state = secrets.token_urlsafe(32)
        pending.expires_at = time.time() + resource.state_ttl
        st.add_pending(pending)
        return redirect(with_query(resource.login_url, {"login_request_id": pending.login_request_id,
                                                        "state": pending.bridge_state}))
    if ctx.auto_login_user_id:
        user = store.users[ctx.auto_login_user_id]
        set_user(ctx, pending, user, store.password_connection_id)
        return approve(request, pending)
    st.add_pending(pending)
    session = store.active_session(request.cookies.get(ctx.cookie_name))
    if session is not None and store.users.get(session.user_id) is not None:
        pending.user_id, pending.organization_id = session.user_id, session.organization_id
        pending.connection_id, pending.session_id = session.connection_id, session.id
        return redirect(f"/oauth/mcp/consent?{urlencode({'p': pending.id})}")
    return redirect(f"/oauth/mcp/login?{urlencode({'p': pending.id})}")


def consent_or_approve(request: Request, pending: Pending) -> Response:
    """After the login: consent page, or straight to the code with --auto-login."""
    if ctx_of(request).auto_login_user_id:
        return approve(request, pending)
    return redirect(f"/oauth/mcp/consent?{urlencode({'p': pending.id})}")


def approve(request: Request, pending: Pending) -> Response:
    ctx = ctx_of(request)
    st = ctx.store.mcp
    resource = st.resources[pending.resource_id]
    code = McpCode(code=secrets.token_urlsafe(32), client_id=pending.client_id, resource_id=resource.id,
                   resource_url=pending.resource_url, redirect_uri=pending.redirect_uri, user_id=pending.user_id,
                   organization_id=pending.organization_id, session_id=pending.session_id,
                   connection_id=pending.connection_id, scopes=pending.scopes, code_challenge=pending.code_challenge,
                   expires_at=time.time() + ctx.code_ttl)
    st.add_code(code)
    st.finish(pending.id)
    ctx.store.record_consent(pending.client_id, resource.id, pending.user_id, pending.scopes)
    ctx.store.count("mcp.logins")
    response = redirect(with_query(pending.redirect_uri, {"code": code.code, "state": pending.state,
                                                          "iss": resource_issuer(pending.base, resource)}))
    if pending.session_id:
        set_session_cookie(response, ctx, pending.session_id)
    return response


# ---- login and consent pages ---------------------------------------------------------------------
def _pending_or_page(request: Request, pending_id: str | None) -> tuple[Pending | None, Response | None]:
    return found_or_page(ctx_of(request).store.mcp.get_pending(pending_id),
                         "This authorization request is unknown or has expired. Start again from the MCP client.")


def _client_name(ctx, pending: Pending) -> str:
    st = ctx.store.mcp
    with st.lock:
        client = st.clients.get(pending.client_id)
    return (client.name if client and client.name else pending.client_id)


def _login_page(request: Request, pending: Pending, email: str = "", error: str | None = None, status: int = 200):
    ctx = ctx_of(request)
    return pages.render("mcp_login.html", "Sign in", status, raw={"error": pages.error_html(error)},
                        client_name=_client_name(ctx, pending), resource_id=pending.resource_id,
                        request_id=pending.id, email=email)


async def login_page(request: Request) -> Response:
    pending, problem = _pending_or_page(request, request.query_params.get("p"))
    return problem or _login_page(request, pending)


async def login_submit(request: Request) -> Response:
    submitted = await submitted_form(request, _pending_or_page, "p")
    if isinstance(submitted, Response):
        return submitted
    form, pending = submitted
    ctx = ctx_of(request)
    email = (form.get("email") or "").strip().lower()
    user = ctx.store.user_by_email(email)
    if user is None or not user.password_matches(form.get("password") or ""):
        return _login_page(request, pending, email, "The email or password is not correct.", 401)
    set_user(ctx, pending, user, ctx.store.password_connection_id)
    response = consent_or_approve(request, pending)
    set_session_cookie(response, ctx, pending.session_id)
    return response


async def consent_page(request: Request) -> Response:
    pending, problem = _pending_or_page(request, request.query_params.get("p"))
    if problem:
        return problem
    if pending.user_id is None:
        return pages.error_page("invalid_request", "Sign in before giving consent.")
    ctx = ctx_of(request)
    user = ctx.store.users.get(pending.user_id)
    scopes = "".join(f"<li><code>{pages.escape(s)}</code></li>" for s in pending.scopes)
    return pages.render("mcp_consent.html", "Allow access", raw={"scopes": f"<ul id=\"scopes\">{scopes}</ul>"},
                        client_name=_client_name(ctx, pending), client_id=pending.client_id,
                        redirect_uri=pending.redirect_uri, resource_url=pending.resource_url,
                        resource_id=pending.resource_id, email=user.email if user else pending.user_id,
                        request_id=pending.id, consent_token=pending.consent_token)


async def consent_submit(request: Request) -> Response:
    submitted = await submitted_form(request, _pending_or_page, "p")
    if isinstance(submitted, Response):
        return submitted
    form, pending = submitted
    if pending.user_id is None:
        return pages.error_page("invalid_request", "Sign in before giving consent.")
    if not hmac.compare_digest(pending.consent_token, form.get("t") or ""):
        return pages.error_page("invalid_request", "The consent form is stale or was not served by this environment.", 403)
    st = ctx_of(request).store.mcp
    resource = st.resources[pending.resource_id]
    if form.get("action") != "approve":
        st.finish(pending.id)
        return error_redirect(pending, "access_denied", "the user denied the authorization request",
                               resource_issuer(pending.base, resource))
    return approve(request, pending)


# ---- /oauth/token for MCP clients ---------------------------------------------------------------
def presented_client_id(request: Request, params: Params) -> tuple[str | None, str | None]:
    """(client_id, secret) from the form (client_secret_post / none) or an HTTP Basic header."""
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            raw = base64.b64decode(auth[6:].strip(), validate=True).decode()
            cid, _, secret = raw.partition(":")
            return unquote(cid), unquote(secret)
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "the Basic authorization header is malformed", 401) from None
    return params.get("client_id"), params.get("client_secret")


async def token(request: Request, ctx, params: Params, grant_type: str) -> dict:
    client_id, secret = presented_client_id(request, params)
    client, problem = await resolve_client(ctx, client_id or "")
    if client is None:
        raise OAuthError("invalid_client", problem, 401)
    if params.get("client_id") and params.get("client_id") != client.id:
        raise OAuthError("invalid_request", "client_id in the body does not match the authenticated client")
    if client.has_secret():
        if not client.secret_matches(secret):
            raise OAuthError("invalid_client", "client authentication failed", 401)
    if params.repeated(("resource",)):
        raise OAuthError("invalid_request", "'resource' was sent more than once")
    ctx.store.count(f"mcp.token.{grant_type}")
    if grant_type == "authorization_code":
        return _grant_code(request, ctx, client, params)
    if grant_type == "refresh_token":
        return _grant_refresh(request, ctx, client, params)
    raise OAuthError("unauthorized_client", f"MCP clients may not use the {grant_type} grant")


def _grant_code(request: Request, ctx, client: McpClient, params: Params) -> dict:
    st = ctx.store.mcp
    code, redirect_uri, verifier = params.get("code"), params.get("redirect_uri"), params.get("code_verifier")
    if not code:
        raise OAuthError("invalid_request", "code is required")
    if not verifier:
        raise OAuthError("invalid_request", "code_verifier is required (PKCE)")
    if not PKCE_VERIFIER.match(verifier):
        raise OAuthError("invalid_request", "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")
    entry, problem = st.take_code(code)
    if problem == "used":  # replay: what the first exchange produced is revoked
        ctx.store.revoke_grant(entry.family_id, entry.access_jti, entry.access_exp)
    check_taken_code(entry, problem, client.id)
    if (redirect_uri or entry.redirect_uri) != entry.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    if not hmac.compare_digest(s256(verifier), entry.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    asked = params.get("resource")
    if asked is not None and asked != entry.resource_url:
        raise OAuthError("invalid_target", f"resource '{asked}' differs from the authorization request's "
                                           f"'{entry.resource_url}'")
    user = code_user(ctx, entry)
    body = _token_body(request, ctx, client, st.resources[entry.resource_id], entry.resource_url, user,
                       entry.organization_id, entry.session_id, entry.scopes)
    remember_access_token(entry, body["access_token"])
    if "offline_access" in entry.scopes:
        entry.family_id = new_id("rtf")
        with st.lock:
            st.families[entry.family_id] = (entry.resource_id, entry.resource_url)
        body["refresh_token"] = ctx.store.issue_refresh_token(entry.family_id, client.id, user.id, entry.organization_id,
                                                              entry.session_id, entry.connection_id, entry.scopes)
    return body


def _grant_refresh(request: Request, ctx, client: McpClient, params: Params) -> dict:
    st = ctx.store.mcp
    presented = params.get("refresh_token")
    if not presented:
        raise OAuthError("invalid_request", "refresh_token is required")
    with ctx.store.lock:  # check the resource before rotating
        rt = ctx.store.refresh_tokens.get(presented)
        family = st.families.get(rt.family_id) if rt else None
    asked = params.get("resource")
    if family is not None and asked is not None and asked != family[1]:
        raise OAuthError("invalid_target", f"resource '{asked}' differs from the original grant's '{family[1]}'")
    rt, problem = ctx.store.use_refresh_token(presented, client.id)
    if rt is None:
        raise OAuthError("invalid_grant", problem)
    if family is None:
        raise OAuthError("invalid_grant", "this refresh token was not issued for an MCP resource")
    scopes, user = refresh_scopes_and_user(ctx, params, rt)
    body = _token_body(request, ctx, client, st.resources[family[0]], family[1], user, rt.organization_id,
                       rt.session_id, scopes)
    body["refresh_token"] = ctx.store.issue_refresh_token(rt.family_id, client.id, user.id, rt.organization_id,
                                                          rt.session_id, rt.connection_id, rt.scopes)
    return body


def _token_body(request: Request, ctx, client: McpClient, resource: Resource, resource_url: str, user, org_id,
                session_id: str, scopes: list[str]) -> dict:
    base = issuer(request)
    now = int(time.time())
    audience = [resource.id] + ([resource_url] if resource_url != resource.id else [])
    # `scope` as a string only, and no profile claims: Scalekit's MCP pages document `scope` and no
    # email (authenticate/mcp/auth-patterns.mdx), so code that reads more fails here first.
    claims = {
        "iss": resource_issuer(base, resource) if resource.token_issuer == "resource" else base,
        "aud": audience, "sub": user.id, "client_id": client.id, "jti": new_id("tkn"), "sid": session_id,
        "scope": " ".join(scopes), "iat": now, "nbf": now, "exp": now + ctx.tokens.access_token_ttl,
    }
    if org_id:
        claims["oid"] = org_id
    return {"access_token": ctx.tokens.sign(claims), "token_type": "Bearer",
            "expires_in": ctx.tokens.access_token_ttl, "scope": " ".join(scopes)}
