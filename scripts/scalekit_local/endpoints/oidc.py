"""OAuth 2.0 and OpenID Connect endpoints: discovery, the signing keys, /oauth/authorize,
/oauth/token (authorization_code, refresh_token and client_credentials grants), /oidc/logout and
/userinfo. A request whose client belongs to an MCP resource (dynamic registration, a metadata
document) goes to mcp_as.py; the login pages are in login.py."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..domain.context import Context
from ..ids import new_id
from ..state.records import STANDARD_SCOPES, AuthRequest, Client
from . import mcp_as, pages
from .login import complete_login
from .oauth import (NO_STORE, PKCE_CHALLENGE, PKCE_VERIFIER, OAuthError, Params, check_taken_code, code_user, ctx_of,
                    error_redirect, issuer, json_error, params_or_page, read_form, redirect, refresh_scopes_and_user,
                    remember_access_token, s256, with_query)

AUTH_REQUEST_TTL = 600
PROMPTS = {"none", "login", "consent", "select_account", "create"}


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

    # Headless login (--auto-login): everything above was still checked, and it is routed like a
    # browser's login; an SSO connection signs in only users of its domains (as its IdP page does).
    if ctx.auto_login_user_id:
        user = store.users[ctx.auto_login_user_id]
        routed_to = connection or (store.connection_for_organization(org_id) if org_id else None) or \
            (store.connection_for_domain(domain) if domain else None) or \
            (store.connection_for_domain(login_hint.rsplit("@", 1)[1]) if login_hint and "@" in login_hint else None)
        if routed_to is not None:
            if user.email.rsplit("@", 1)[-1].lower() not in routed_to.domains and \
                    routed_to.id not in store.hostile_idp_connections:
                return error_redirect(req, "access_denied", f"the --auto-login user is not a user of connection "
                                                            f"{routed_to.id}'s domains")
            return complete_login(request, req, user, routed_to.id, routed_to.organization_id)
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

    access, id_token = ctx.tokens.user_tokens(issuer(request), client, user, entry.organization_id, entry.session_id,
                                              entry.connection_id, entry.scopes, entry.nonce,
                                              *ctx.store.user_claims(user, entry.organization_id),
                                              id_subject=id_token_subject(ctx, user, entry.connection_id))
    remember_access_token(entry, access)
    body = {"access_token": access, "id_token": id_token, "token_type": "Bearer",
            "expires_in": ctx.tokens.access_token_ttl, "scope": " ".join(entry.scopes)}
    if "offline_access" in entry.scopes:
        entry.family_id = new_id("rtf")
        body["refresh_token"] = ctx.store.issue_refresh_token(entry.family_id, client.id, user.id, entry.organization_id,
                                                              entry.session_id, entry.connection_id, entry.scopes)
    return body


def id_token_subject(ctx: Context, user, connection_id: str | None) -> str | None:
    """--modular-sso: an SSO login's ID token `sub` is the connection id and the identity provider's
    own id for the user, joined by ";" (developer-docs sso/guides/user-profile-details.mdx). The
    simulated IdP's id is opaque and stable per connection and email, as a real IdP's is."""
    if not ctx.store.modular_sso or ctx.store.connection(connection_id) is None:
        return None
    idp_user_id = hashlib.sha256(f"{connection_id}\0{user.email.lower()}".encode()).hexdigest()[:24]
    return f"{connection_id};{idp_user_id}"


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
    access, id_token = ctx.tokens.user_tokens(issuer(request), client, user, rt.organization_id, rt.session_id,
                                              rt.connection_id, scopes, None, *ctx.store.user_claims(user, rt.organization_id),
                                              id_subject=id_token_subject(ctx, user, rt.connection_id))
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
