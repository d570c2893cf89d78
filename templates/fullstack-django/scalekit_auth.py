"""Scalekit login, sessions and logout for Django: the one file to copy.

    MIDDLEWARE = [..., "scalekit_auth.SessionMiddleware"]   # request.scalekit_user; refreshes the tokens
    path("auth/", include("scalekit_auth"))                 # /auth/login, /auth/callback, /auth/logout
    @page_login_required                                    # protected page: redirects to the login
    @api_login_required                                     # protected API: 401 without a session or bearer token
    @permission_required("x:y")                             # 403 unless the access token grants the permission

The session is one cookie encrypted with the SDK's scalekit.middleware.session_crypto (AES-GCM keyed by
SESSION_SECRET); it needs no database. When the access token expires the middleware refreshes it: one
refresh per session at a time within this process. Several processes may refresh one session at once;
Scalekit then sees a refresh token used twice and ends the session (README.md). While Scalekit does not
answer (network, 5xx), requests get 503 and the session stays; only a token or refresh that Scalekit
refuses ends it.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import os
import secrets
import threading
import time
from urllib.parse import quote, urlencode, urlsplit

import jwt
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import path
from django.utils.html import escape
from scalekit import AuthorizationUrlOptions, CodeAuthenticationOptions, ScalekitClient
from scalekit.common.exceptions import (ScalekitBadRequestException, ScalekitException, ScalekitForbiddenException,
                                        ScalekitNotFoundException, ScalekitUnauthorizedException)
from scalekit.common.scalekit import LogoutUrlOptions, TokenValidationOptions
from scalekit.middleware.csrf_state import generate_state, verify_state
from scalekit.middleware.session_crypto import InvalidSessionError, decrypt_session, encrypt_session

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
VALIDATION = TokenValidationOptions(issuer=ENV_URL, audience=[CLIENT_ID])


def set_cookie(response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Lax", secure=SECURE_COOKIES, path="/")


def delete_cookie(response, name: str) -> None:
    response.delete_cookie(name, path="/", samesite="Lax")


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
def login(request):
    state, nonce = generate_state(), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # PKCE: the Python SDK has no option for it
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    options = AuthorizationUrlOptions()
    options.scopes, options.state, options.nonce = SCOPES, state, nonce
    options.provider = request.GET.get("provider")  # social login: google, github, microsoft, ...
    options.organization_id = request.GET.get("organization_id")  # enterprise SSO of this organization
    options.domain_hint = request.GET.get("domain")  # enterprise SSO of this email domain
    options.login_hint = request.GET.get("login_hint")
    url = scalekit.get_authorization_url(REDIRECT_URI, options)
    url += "&" + urlencode({"code_challenge": challenge, "code_challenge_method": "S256"})
    pending = {"state": state, "nonce": nonce, "verifier": verifier,
               "return_to": safe_return_to(request.GET.get("returnTo")), "expires_at": time.time() + LOGIN_TTL}
    response = HttpResponseRedirect(url)
    set_cookie(response, LOGIN_COOKIE, encrypt_session(pending, SESSION_SECRET), max_age=LOGIN_TTL)
    return response
# endregion login


# region callback
def login_failed(reason: str) -> HttpResponse:
    response = HttpResponse(f"<h1>Login failed</h1><p>{escape(reason)}</p><p><a href='/auth/login'>Try again</a></p>",
                            status=400)
    delete_cookie(response, LOGIN_COOKIE)
    return response


def verify_id_token(id_token: str, nonce: str) -> dict:
    """Signature, iss, aud, exp (validate_token), then the nonce of this login."""
    claims = scalekit.validate_token(id_token, VALIDATION)
    if not secrets.compare_digest(claims.get("nonce") or "", nonce):
        raise jwt.InvalidTokenError("the ID token's nonce is not the one this login sent")
    return claims


def callback(request):
    pending = read_session(request.COOKIES.get(LOGIN_COOKIE))
    if pending is None:
        return login_failed("This login was not started in this browser.")
    if request.GET.get("error"):
        return login_failed("Scalekit did not sign you in.")  # never echo error_description
    if pending.get("expires_at", 0) < time.time() or not verify_state(pending.get("state"), request.GET.get("state")):
        return login_failed("The login expired or does not belong to this browser.")
    if not request.GET.get("code"):
        return login_failed("The callback has no code.")
    options = CodeAuthenticationOptions()
    options.code_verifier = pending["verifier"]
    try:
        result = scalekit.authenticate_with_code(request.GET["code"], REDIRECT_URI, options)
        id_claims = verify_id_token(result["id_token"], pending["nonce"])
        claims = scalekit.validate_token(result["access_token"], VALIDATION)
    except Exception:  # invalid_grant (a used or foreign code), a bad token, Scalekit unreachable
        return login_failed("The sign-in could not be completed.")
    profile = {k: id_claims[k] for k in ("sub", "email", "name", "given_name", "family_name") if k in id_claims}
    # Browsers drop cookies over ~4 KB: keep what the app needs, not the access token itself.
    session = {"claims": claims, "profile": profile, "refresh_token": result["refresh_token"],
               "id_token": result["id_token"], "expires_at": claims["exp"]}
    response = HttpResponseRedirect(pending["return_to"] or AFTER_LOGIN)
    set_cookie(response, SESSION_COOKIE, encrypt_session(session, SESSION_SECRET))  # new at every login
    delete_cookie(response, LOGIN_COOKIE)
    return response
# endregion callback


# region session
class ScalekitUnavailable(Exception):
    """Scalekit did not answer (network, timeout, 5xx, 429): not the user's fault, so keep the session."""


# The SDK's exceptions for answers that refuse the request; any other ScalekitException means that
# Scalekit could not answer. (Branch on the class: the SDK's http_status reads 500 for an HTTP 400.)
REFUSED = (ScalekitBadRequestException, ScalekitUnauthorizedException, ScalekitForbiddenException,
           ScalekitNotFoundException)


def is_outage(error: Exception) -> bool:
    return isinstance(error, ScalekitException) and not isinstance(error, REFUSED)


def user_of(claims: dict, profile: dict | None = None) -> dict:
    """What views get as request.scalekit_user, the same shape for a session and for a bearer token:
    the access token's claims plus `profile` (sub, email, name from the ID token; empty for bearer
    callers, who have no ID token)."""
    return {**claims, "profile": profile or {}}


def unavailable_response() -> HttpResponse:
    return HttpResponse("The sign-in service is not answering. Try again in a moment.", status=503,
                        content_type="text/plain", headers={"Retry-After": "5"})


# region refresh
REFRESH_EARLY = 10  # seconds: refresh a little before the access token expires
_refresh_locks: dict[str, threading.Lock] = {}
_refreshed: dict[str, tuple[float, dict | None]] = {}  # old refresh token -> (when, new session), for 60 s
_guard = threading.Lock()


def refreshed(session: dict) -> dict | None:
    """The session with new tokens, or None when Scalekit refuses (session ended, token revoked);
    raises ScalekitUnavailable when Scalekit does not answer (then nothing is kept, and the next request
    tries again). Concurrent requests of one session share one refresh: a rotated refresh token works once."""
    token = session["refresh_token"]
    with _guard:
        for old in [k for k, (when, _) in _refreshed.items() if when < time.time() - 60]:
            _refreshed.pop(old, None)
            _refresh_locks.pop(old, None)
        lock = _refresh_locks.setdefault(token, threading.Lock())
    with lock:
        if token not in _refreshed:
            _refreshed[token] = (time.time(), _refresh(session))
        return _refreshed[token][1]


def _refresh(session: dict) -> dict | None:
    try:
        tokens = scalekit.refresh_access_token(session["refresh_token"])
        claims = scalekit.validate_token(tokens["access_token"], VALIDATION)
    except Exception as error:
        if is_outage(error):
            raise ScalekitUnavailable(f"refresh: {type(error).__name__}") from error
        return None  # refused (invalid_grant: session ended or token reused): the user signs in again
    # refresh_access_token returns no ID token: keep the one from the login for the logout hint.
    return {**session, "claims": claims, "refresh_token": tokens["refresh_token"], "expires_at": claims["exp"]}
# endregion refresh


class SessionMiddleware:
    """Sets request.scalekit_user (user_of: access-token claims plus `profile`, or None) on every
    request, refreshing the tokens when the access token expires, and writes the new cookie on the
    response. While Scalekit does not answer: 503, and the cookie stays."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        cookie = request.COOKIES.get(SESSION_COOKIE)
        session = read_session(cookie) if cookie else None
        new_cookie = None
        if session and session["expires_at"] - REFRESH_EARLY < time.time():
            try:
                session = refreshed(session)
            except ScalekitUnavailable:
                return unavailable_response()
            new_cookie = encrypt_session(session, SESSION_SECRET) if session else ""
        elif cookie and session is None:
            new_cookie = ""  # tampered or from another key: clear it
        request.scalekit_user = user_of(session["claims"], session["profile"]) if session else None
        response = self.get_response(request)
        if new_cookie and SESSION_COOKIE not in response.cookies:
            set_cookie(response, SESSION_COOKIE, new_cookie)
        elif new_cookie == "" and SESSION_COOKIE not in response.cookies:
            delete_cookie(response, SESSION_COOKIE)
        return response
# endregion session


# region guards
def page_login_required(view):
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.scalekit_user is None:
            return HttpResponseRedirect("/auth/login?returnTo=" + quote(request.get_full_path(), safe=""))
        return view(request, *args, **kwargs)
    return wrapped


def bearer_user(request) -> dict | None:
    """The user of a valid `Authorization: Bearer` access token; None without one; raises if invalid."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return user_of(scalekit.validate_token(header[7:].strip(), VALIDATION))  # signature, iss, aud, exp


def api_login_required(view):
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            user = bearer_user(request) or request.scalekit_user
        except (jwt.InvalidTokenError, KeyError, ValueError):  # KeyError: a kid that /keys does not list
            return JsonResponse({"error": "invalid access token"}, status=401,
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        except ScalekitException as error:  # the keys could not be fetched: Scalekit down, not a bad token
            if not is_outage(error):
                raise
            return JsonResponse({"error": "sign-in service unavailable, retry"}, status=503,
                                headers={"Retry-After": "5"})
        if user is None:
            return JsonResponse({"error": "not signed in"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        request.scalekit_user = user
        return view(request, *args, **kwargs)
    return wrapped


def permission_required(permission: str):
    def decorate(view):
        @api_login_required
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if permission not in request.scalekit_user.get("permissions", []):
                return JsonResponse({"error": f"needs the permission {permission}"}, status=403)
            return view(request, *args, **kwargs)
        return wrapped
    return decorate
# endregion guards


# region logout
def logout(request):
    """Clear the app's session, then end Scalekit's in the browser (a server-side call cannot)."""
    session = read_session(request.COOKIES.get(SESSION_COOKIE)) or {}
    target = "/"
    if session.get("id_token"):
        target = scalekit.get_logout_url(LogoutUrlOptions(id_token_hint=session["id_token"],
                                                          post_logout_redirect_uri=POST_LOGOUT_URI))
    response = HttpResponseRedirect(target)
    delete_cookie(response, SESSION_COOKIE)
    return response
# endregion logout


urlpatterns = [path("login", login), path("callback", callback), path("logout", logout)]
