"""Custom auth: this MCP server keeps its own login page, and Scalekit's login-request flow bridges it
into OAuth 2.1 for MCP clients.

1. An MCP client starts a login at Scalekit; Scalekit sends the browser to this app's LOGIN_PATH with
   `login_request_id` and `state`.
2. The user signs in with an account of this app (`authenticate`: your user database in real life).
3. The app posts the user to Scalekit, server to server, with its own client credentials
   (`update_login_user_details`), and sends the browser back to Scalekit's partner:callback with
   `state` unchanged. Scalekit asks for consent and issues the MCP client its tokens.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import html
import os
import secrets
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from scalekit import ScalekitClient
from scalekit.common.exceptions import ScalekitServerException

from scalekit_auth import APP_URL, ENV_URL

# region config
CONNECTION_ID = os.environ["SCALEKIT_CONNECTION_ID"]  # conn_..., the MCP server's custom-auth connection
LOGIN_PATH = "/login"  # registered as the MCP server's login URL in the dashboard
# endregion config


# region users
# This app's own accounts. Replace USERS and authenticate() with your user database and password check.
_SALT = secrets.token_bytes(16)


def _hash(password: str) -> bytes:
    return hashlib.scrypt(password.encode(), salt=_SALT, n=2**14, r=8, p=1)


USERS = {os.environ.get("DEMO_USER_EMAIL", "dana@example.com").lower():
         {"sub": "user-1001", "name": "Dana Demo", "password": _hash(os.environ["DEMO_USER_PASSWORD"])}}


def authenticate(email: str, password: str) -> dict | None:
    """The user details Scalekit needs (sub and email at least), or None. Slow on purpose: run it in a thread."""
    email = email.strip().lower()
    user = USERS.get(email)
    candidate = _hash(password)  # hashed even for unknown emails, so timing does not tell them apart
    if user is None or not hmac.compare_digest(candidate, user["password"]):
        return None
    return {"sub": user["sub"], "email": email, "name": user["name"], "email_verified": True}
# endregion users


# region bridge
@functools.cache
def scalekit() -> ScalekitClient:
    """Created once, on first use: the constructor fetches a client-credentials token."""
    return ScalekitClient(ENV_URL, os.environ["SCALEKIT_CLIENT_ID"], os.environ["SCALEKIT_CLIENT_SECRET"])


router = APIRouter()
CSRF_COOKIE = "login_csrf"


@router.get(LOGIN_PATH)
def login_page(login_request_id: str = "", state: str = "") -> Response:
    csrf = secrets.token_urlsafe(24)  # ties the form to this browser (login CSRF)
    response = page(login_request_id, state, csrf)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="lax", secure=APP_URL.startswith("https://"),
                        path=LOGIN_PATH)
    return response


@router.post(LOGIN_PATH)
async def login_submit(request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    login_request_id, state, csrf = form.get("login_request_id", ""), form.get("state", ""), form.get("csrf", "")
    if not login_request_id or not state:
        return page("", "", "", "Start the login from your MCP client.", 400)
    if not csrf or not hmac.compare_digest(csrf, request.cookies.get(CSRF_COOKIE, "")):
        return page(login_request_id, state, "", "This form expired. Start the login again from your MCP client.", 403)
    user = await asyncio.to_thread(authenticate, form.get("email", ""), form.get("password", ""))
    if user is None:
        return page(login_request_id, state, csrf, "Wrong email or password.", 401)
    try:  # blocking gRPC call: in a thread
        await asyncio.to_thread(scalekit().auth.update_login_user_details, CONNECTION_ID, login_request_id, user)
    except ScalekitServerException:
        return page("", "", "", "This login request has expired or was already used. Start again from your MCP client.",
                    400)
    callback = f"{ENV_URL}/sso/v1/connections/{CONNECTION_ID}/partner:callback?{urlencode({'state': state})}"
    return RedirectResponse(callback, status_code=303)
# endregion bridge


def page(login_request_id: str, state: str, csrf: str, error: str = "", status: int = 200) -> HTMLResponse:
    e = html.escape
    form = "" if not csrf else f"""<form method="post" action="{LOGIN_PATH}">
  <input type="hidden" name="login_request_id" value="{e(login_request_id)}">
  <input type="hidden" name="state" value="{e(state)}">
  <input type="hidden" name="csrf" value="{e(csrf)}">
  <label>Email <input type="email" name="email" id="email" autocomplete="username" required></label>
  <label>Password <input type="password" name="password" id="password" autocomplete="current-password" required></label>
  <button type="submit" id="sign-in">Sign in</button>
</form>"""
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>Sign in</title></head><body>
<h1>Sign in to the Todo MCP server</h1>{f'<p id="error">{e(error)}</p>' if error else ''}{form}</body></html>"""
    return HTMLResponse(body, status_code=status,
                        headers={"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"})
