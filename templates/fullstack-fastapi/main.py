"""A small FastAPI app signed in with Scalekit: the routes a real app would have.

Run: uvicorn main:app --host 127.0.0.1 --port 3000   (the Scalekit wiring is in auth.py)
"""
from __future__ import annotations

from html import escape
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from auth import LoginRequired, SessionMiddleware, api_user, page_user, require_permission, router

# region app
app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
app.add_middleware(SessionMiddleware)  # request.state.user; refreshes expired tokens
app.include_router(router)  # /auth/login, /auth/callback, /auth/logout


@app.exception_handler(LoginRequired)  # page_user raises it: send the browser to the login
async def to_login(request: Request, exc: LoginRequired):
    return RedirectResponse(f"/auth/login?returnTo={quote(exc.return_to, safe='')}", status_code=302)
# endregion app

# Reserved and standard claims; any other access-token claim was added in the dashboard (Token Claims).
STANDARD_CLAIMS = {"iss", "aud", "sub", "oid", "exp", "iat", "nbf", "jti", "sid", "client_id", "roles", "permissions",
                   "scope", "scopes", "xoid", "xuid", "email", "name", "profile"}
NOTES = {"org_70000000000001001": ["Acme launch plan"], "org_70000000000001002": ["Globex roadmap"]}


def page(title: str, body: str, user: dict | None = None) -> str:
    nav = "<a href='/auth/logout'>Log out</a>" if user else "<a href='/auth/login'>Log in</a>"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head><body>"
            f"<nav><a href='/'>Home</a> <a href='/dashboard'>Dashboard</a> <a href='/profile'>Profile</a> {nav}"
            f"</nav><h1>{escape(title)}</h1>{body}</body></html>")


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/", response_class=HTMLResponse)
def home(request: Request):
    user = request.state.user
    who = f"<p>Signed in as {escape(user['profile'].get('email', user['sub']))}.</p>" if user else "<p>Signed out.</p>"
    return page("Home", who, user)


# region pages
@app.get("/dashboard", response_class=HTMLResponse)
def dashboard(user: dict = Depends(page_user)):
    return page("Dashboard", f"<p id='user'>Welcome, {escape(user['profile'].get('name', user['sub']))}.</p>", user)


@app.get("/profile", response_class=HTMLResponse)
def profile(user: dict = Depends(page_user)):
    custom = {k: v for k, v in user.items() if k not in STANDARD_CLAIMS}  # added under Token Claims
    rows = [("Email", user["profile"].get("email")), ("Name", user["profile"].get("name")),
            ("Organization", user.get("oid")), ("Roles", ", ".join(user.get("roles", []))),
            ("Permissions", ", ".join(user.get("permissions", [])))]
    rows += [(f"Custom claim {k}", v) for k, v in sorted(custom.items())]
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return page("Profile", f"<table id='profile'>{cells}</table>", user)
# endregion pages


# region api
@app.get("/api/me")
def me(user: dict = Depends(api_user)):  # a session's user or a bearer token's: the same shape
    return {"sub": user["sub"], "email": user["profile"].get("email"), "name": user["profile"].get("name"),
            "oid": user.get("oid"), "roles": user.get("roles", []), "permissions": user.get("permissions", [])}


@app.get("/api/admin")
def admin(user: dict = Depends(require_permission("organization:write"))):
    return {"sub": user["sub"], "admin": True}


@app.get("/api/orgs/{org_id}/notes")
def notes(org_id: str, user: dict = Depends(api_user)):
    if org_id != user.get("oid"):  # tenant isolation: only the organization the user signed in to
        raise HTTPException(403, "not a member of this organization")
    return {"organization_id": org_id, "notes": NOTES.get(org_id, [])}
# endregion api
