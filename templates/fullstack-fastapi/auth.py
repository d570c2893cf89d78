"""Scalekit login, sessions and logout for FastAPI: the one file to copy.

    app.add_middleware(SessionMiddleware)   # reads the session cookie, refreshes it when it expires
    app.include_router(router)              # /auth/login, /auth/callback, /auth/logout
    Depends(page_user)                      # protected page: redirects to the login
    Depends(api_user)                       # protected API: 401 without a session or a valid bearer token
    Depends(require_permission("x:y"))      # 403 unless the access token grants the permission

The session is one cookie encrypted with the SDK's scalekit.middleware.session_crypto (AES-GCM keyed
by SESSION_SECRET). When the access token expires, the middleware refreshes it: one refresh per
session at a time within this process. Several processes (uvicorn --workers N) may refresh one
session at once; Scalekit then sees a refresh token used twice and ends the session (README.md).
While Scalekit does not answer (network, 5xx), requests get 503 and the session stays; only a token
or refresh that Scalekit refuses ends it.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import jwt
from dotenv import load_dotenv
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from scalekit import AuthorizationUrlOptions, CodeAuthenticationOptions, ScalekitClient
from scalekit.common.exceptions import (ScalekitBadRequestException, ScalekitException, ScalekitForbiddenException,
                                        ScalekitNotFoundException, ScalekitUnauthorizedException)
from scalekit.common.scalekit import LogoutUrlOptions, TokenValidationOptions
from scalekit.middleware.csrf_state import generate_state, verify_state
from scalekit.middleware.session_crypto import InvalidSessionError, decrypt_session, encrypt_session
from starlette.concurrency import run_in_threadpool

# .env in this folder, if any. Its values win over exported ones (override=True): many machines export
# SSL_CERT_FILE or REQUESTS_CA_BUNDLE, which would hide the local Scalekit environment's CA.
load_dotenv(Path(__file__).with_name(".env"), override=True)

# region config
ENV_URL = os.environ["SCALEKIT_ENVIRONMENT_URL"].rstrip("/")
CLIENT_ID = os.environ["SCALEKIT_CLIENT_ID"]
APP_URL = os.environ.get("APP_URL", "http://localhost:3000").rstrip("/")
REDIRECT_URI = APP_URL + "/auth/callback"  # register it in the dashboard (Redirects)
POST_LOGOUT_URI = APP_URL + "/"  # register it too (Post-logout URLs)
SESSION_SECRET = os.environ["SESSION_SECRET"]  # 32+ random bytes, the same in every process
# Browsers may drop Secure cookies sent over plain http://localhost; everywhere else use https.
SECURE_COOKIES = APP_URL.startswith("https://")
SCOPES = ["openid", "profile", "email", "offline_access"]  # offline_access: a refresh token
AFTER_LOGIN = "/dashboard"

scalekit = ScalekitClient(ENV_URL, CLIENT_ID, os.environ["SCALEKIT_CLIENT_SECRET"])
# endregion config

SESSION_COOKIE = "session"  # the tokens, encrypted
LOGIN_COOKIE = "scalekit_login"  # state, nonce and PKCE verifier between login and callback
LOGIN_TTL = 600
router = APIRouter()


def set_cookie(response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=SECURE_COOKIES, path="/")


def delete_cookie(response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=SECURE_COOKIES)


def read_session(cookie: str | None) -> dict | None:
    try:
        return decrypt_session(cookie or "", SESSION_SECRET)  # AES-GCM: a changed byte fails
    except InvalidSessionError:
        return None


# region return_to
def safe_return_to(value: str | None) -> str | None:
    """A path on this site, or None: never a URL a browser would send to another host."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return None
    if any(ch in value for ch in "\\\t\r\n") or urlsplit(value).netloc:
        return None  # browsers read "/\evil.test" as "//evil.test"
    return value
# endregion return_to


# region login
@router.get("/auth/login")
async def login(request: Request, returnTo: str | None = None, provider: str | None = None,
                organization_id: str | None = None, domain: str | None = None, login_hint: str | None = None):
    state, nonce = generate_state(), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # PKCE: the Python SDK has no option for it
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    options = AuthorizationUrlOptions()
    options.scopes, options.state, options.nonce = SCOPES, state, nonce
    options.provider = provider  # social login: google, github, microsoft, gitlab, linkedin, salesforce
    options.organization_id = organization_id  # enterprise SSO of this organization
    options.domain_hint = domain  # enterprise SSO of this email domain
    options.login_hint = login_hint
    url = scalekit.get_authorization_url(REDIRECT_URI, options)
    url += "&" + urlencode({"code_challenge": challenge, "code_challenge_method": "S256"})
    pending = {"state": state, "nonce": nonce, "verifier": verifier, "return_to": safe_return_to(returnTo),
               "expires_at": time.time() + LOGIN_TTL}
    response = RedirectResponse(url, status_code=302)
    set_cookie(response, LOGIN_COOKIE, encrypt_session(pending, SESSION_SECRET), max_age=LOGIN_TTL)
    return response
# endregion login


# region callback
def login_failed(reason: str) -> HTMLResponse:
    response = HTMLResponse(f"<h1>Login failed</h1><p>{reason}</p><p><a href='/auth/login'>Try again</a></p>",
                            status_code=400)
    delete_cookie(response, LOGIN_COOKIE)
    return response


def verify_id_token(id_token: str, nonce: str) -> dict:
    """Signature, iss, aud, exp (validate_token), then the nonce of this login."""
    claims = scalekit.validate_token(id_token, TokenValidationOptions(issuer=ENV_URL, audience=[CLIENT_ID]))
    if not secrets.compare_digest(claims.get("nonce") or "", nonce):
        raise jwt.InvalidTokenError("the ID token's nonce is not the one this login sent")
    return claims


@router.get("/auth/callback")
async def callback(request: Request):
    pending = read_session(request.cookies.get(LOGIN_COOKIE))
    if pending is None:
        return login_failed("This login was not started in this browser.")
    params = request.query_params
    if params.get("error"):
        return login_failed("Scalekit did not sign you in.")  # never echo error_description
    if pending.get("expires_at", 0) < time.time() or not verify_state(pending.get("state"), params.get("state")):
        return login_failed("The login expired or does not belong to this browser.")
    if not params.get("code"):
        return login_failed("The callback has no code.")
    options = CodeAuthenticationOptions()
    options.code_verifier = pending["verifier"]
    try:
        result = await run_in_threadpool(scalekit.authenticate_with_code, params["code"], REDIRECT_URI, options)
        id_claims = await run_in_threadpool(verify_id_token, result["id_token"], pending["nonce"])
        claims = await run_in_threadpool(scalekit.validate_token, result["access_token"],
                                         TokenValidationOptions(issuer=ENV_URL, audience=[CLIENT_ID]))
    except Exception:  # invalid_grant (a used or foreign code), a bad token, Scalekit unreachable
        return login_failed("The sign-in could not be completed.")
    profile = {k: id_claims[k] for k in ("sub", "email", "name", "given_name", "family_name") if k in id_claims}
    # Browsers drop cookies over ~4 KB: keep what the app needs, not the access token itself.
    session = {"claims": claims, "profile": profile, "refresh_token": result["refresh_token"],
               "id_token": result["id_token"], "expires_at": claims["exp"]}
    response = RedirectResponse(pending["return_to"] or AFTER_LOGIN, status_code=303)
    set_cookie(response, SESSION_COOKIE, encrypt_session(session, SESSION_SECRET))  # new at every login
    delete_cookie(response, LOGIN_COOKIE)
    return response
# endregion callback


# region session
def user_of(claims: dict, profile: dict | None = None) -> dict:
    """What routes get as the user, the same shape for a session and for a bearer token: the access
    token's claims plus `profile` (sub, email, name from the ID token; empty for bearer callers,
    who have no ID token)."""
    return {**claims, "profile": profile or {}}


# region refresh
class ScalekitUnavailable(Exception):
    """Scalekit did not answer (network, timeout, 5xx, 429): not the user's fault, so keep the session."""


# The SDK's exceptions for answers that refuse the request; any other ScalekitException means that
# Scalekit could not answer. (Branch on the class: the SDK's http_status reads 500 for an HTTP 400.)
REFUSED = (ScalekitBadRequestException, ScalekitUnauthorizedException, ScalekitForbiddenException,
           ScalekitNotFoundException)


def is_outage(error: Exception) -> bool:
    return isinstance(error, ScalekitException) and not isinstance(error, REFUSED)


REFRESH_EARLY = 10  # seconds: refresh a little before the access token expires
_refreshes: dict[str, asyncio.Future] = {}  # refresh token -> the one refresh in flight (and its result, 60 s)


async def refreshed(session: dict) -> dict | None:
    """The session with new tokens, or None when Scalekit refuses (session ended, token revoked);
    raises ScalekitUnavailable when Scalekit does not answer. Concurrent requests of one session share
    one refresh: a rotated refresh token works once."""
    token = session["refresh_token"]
    task = _refreshes.get(token)
    if task is None:
        task = _refreshes[token] = asyncio.ensure_future(run_in_threadpool(_refresh, session))
        asyncio.get_running_loop().call_later(60, _forget, token, task)
    try:
        return await asyncio.shield(task)
    except ScalekitUnavailable:
        _forget(token, task)  # nothing to share: the next request tries again
        raise


def _forget(token: str, task: asyncio.Future) -> None:
    if _refreshes.get(token) is task:
        del _refreshes[token]


def _refresh(session: dict) -> dict | None:
    try:
        tokens = scalekit.refresh_access_token(session["refresh_token"])
        claims = scalekit.validate_token(tokens["access_token"], TokenValidationOptions(issuer=ENV_URL,
                                                                                        audience=[CLIENT_ID]))
    except Exception as error:
        if is_outage(error):
            raise ScalekitUnavailable(f"refresh: {type(error).__name__}") from error
        return None  # refused (invalid_grant: session ended or token reused): the user signs in again
    # refresh_access_token returns no ID token: keep the one from the login for the logout hint.
    return {**session, "claims": claims, "refresh_token": tokens["refresh_token"], "expires_at": claims["exp"]}
# endregion refresh


class SessionMiddleware:
    """Sets request.state.user (user_of: access-token claims plus `profile`, or None) on every
    request, refreshing the tokens when the access token expires, and writes the new cookie on
    whatever response the route returns. While Scalekit does not answer: 503, and the cookie stays."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cookie = Request(scope).cookies.get(SESSION_COOKIE)
        session = read_session(cookie) if cookie else None
        new_cookie = None
        if session and session["expires_at"] - REFRESH_EARLY < time.time():
            try:
                session = await refreshed(session)
            except ScalekitUnavailable:
                return await unavailable_response()(scope, receive, send)
            new_cookie = encrypt_session(session, SESSION_SECRET) if session else ""
        elif cookie and session is None:
            new_cookie = ""  # tampered or from another key: clear it
        scope.setdefault("state", {})["user"] = user_of(session["claims"], session["profile"]) if session else None

        async def send_with_cookie(message):
            if message["type"] == "http.response.start" and new_cookie is not None:
                cookies = Response()  # only to format the Set-Cookie header
                if new_cookie:
                    set_cookie(cookies, SESSION_COOKIE, new_cookie)
                else:
                    delete_cookie(cookies, SESSION_COOKIE)
                message["headers"] = list(message["headers"]) + [
                    (k, v) for k, v in cookies.raw_headers if k == b"set-cookie"]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
# endregion session


def unavailable_response() -> Response:
    return PlainTextResponse("The sign-in service is not answering. Try again in a moment.", status_code=503,
                             headers={"Retry-After": "5"})


# region guards
class LoginRequired(Exception):
    """Raised by page_user; main.py turns it into a redirect to the login."""

    def __init__(self, return_to: str):
        self.return_to = return_to


def page_user(request: Request) -> dict:
    if request.state.user is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return request.state.user


async def api_user(request: Request) -> dict:
    """The session's user, or the user of a valid `Authorization: Bearer` access token (same shape)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        options = TokenValidationOptions(issuer=ENV_URL, audience=[CLIENT_ID])
        try:  # signature (keys from /keys, fetched once), iss, aud, exp
            claims = await run_in_threadpool(scalekit.validate_token, header[7:].strip(), options)
        except (jwt.InvalidTokenError, KeyError, ValueError):  # KeyError: a kid that /keys does not list
            raise HTTPException(401, "invalid access token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        except ScalekitException as error:  # the keys could not be fetched: Scalekit down, not a bad token
            if not is_outage(error):
                raise
            raise HTTPException(503, "sign-in service unavailable, retry", {"Retry-After": "5"}) from error
        return user_of(claims)
    if request.state.user is None:
        raise HTTPException(401, "not signed in", {"WWW-Authenticate": "Bearer"})
    return request.state.user


def require_permission(permission: str):
    async def guard(user: dict = Depends(api_user)) -> dict:
        if permission not in user.get("permissions", []):
            raise HTTPException(403, f"needs the permission {permission}")
        return user
    return guard
# endregion guards


# region logout
@router.get("/auth/logout")
async def logout(request: Request):
    """Clear the app's session, then end Scalekit's in the browser (a server-side call cannot)."""
    session = read_session(request.cookies.get(SESSION_COOKIE)) or {}
    target = "/"
    if session.get("id_token"):
        target = scalekit.get_logout_url(LogoutUrlOptions(id_token_hint=session["id_token"],
                                                          post_logout_redirect_uri=POST_LOGOUT_URI))
    response = RedirectResponse(target, status_code=302)
    delete_cookie(response, SESSION_COOKIE)
    return response
# endregion logout
