"""The login pages of /oauth/authorize: email and password, single sign-on by email domain, the
simulated identity provider of an SSO connection, and the social providers; complete_login issues
the authorization code and sends the browser back to the app (also for --auto-login and a reused
browser session, from oidc.py)."""
from __future__ import annotations

import re
import secrets
import time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ..domain.users import provision_user
from ..state.records import AuthCode, AuthRequest, User, login_data
from . import pages
from .oauth import ctx_of, error_redirect, found_or_page, redirect, set_session_cookie, submitted_form, with_query


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
    ctx.events.emit("user.login", login_data(user, store.sessions[session_id]), organization_id=org_id)
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
    email = email or req.login_hint or ""  # pre-filled only from the app's login_hint (documented minimum)
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
    # Only the connection's domains, unless --hostile-idp lets this IdP assert any email: many IdPs let
    # an IT admin create a user with any address, so an app must not let the asserted email pick an
    # existing account. Whether the hosted service checks it in modular SSO is undocumented.
    if "@" not in email or (email.rsplit("@", 1)[1] not in connection.domains
                            and connection.id not in store.hostile_idp_connections):
        return _idp_page(request, req, connection, email, "This identity provider only signs in users of: "
                         + (", ".join(connection.domains) or "no domains"), 400)
    user = provision_user(ctx_of(request), email, connection.organization_id)
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
    user = provision_user(ctx_of(request), email, None)
    return complete_login(request, req, user, store.providers[provider].connection_id, None)
