"""A small multi-tenant app with its own users, password login and sessions, plus enterprise SSO
(sso.py) and directory sync (directory_sync.py) through Scalekit. Run: python main.py"""
from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import quote, urlsplit

import uvicorn
from dotenv import load_dotenv

# .env in this folder, if any. Its values win over exported ones (override=True): many machines export
# SSL_CERT_FILE or REQUESTS_CA_BUNDLE, which would hide the local Scalekit environment's CA.
load_dotenv(Path(__file__).with_name(".env"), override=True)

import db
import directory_sync
import sso
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

APP_URL = sso.APP_URL
SECURE_COOKIES = APP_URL.startswith("https://")
SESSION_COOKIE, STATE_COOKIE = "session", "sso_state"

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
db.init()


@app.middleware("http")
async def same_origin_posts(request: Request, call_next):
    """Forms post only from this app's own pages (the webhook is checked by its signature instead)."""
    origin = request.headers.get("origin")
    if request.method == "POST" and request.url.path != "/webhooks/scalekit" and origin is not None \
            and origin != "{0.scheme}://{0.netloc}".format(urlsplit(APP_URL)):
        return page("Forbidden", "<p>Cross-site form posts are not accepted.</p>", 403)
    return await call_next(request)


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}"
        "input,button{font:inherit;padding:.4rem;margin:.2rem 0}.error{color:#b00020}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>", status_code=status,
        headers={"Cache-Control": "no-store"})


def email_form(message: str = "", status: int = 200) -> HTMLResponse:
    return page("Sign in", f"<p class='error'>{html.escape(message)}</p>" * bool(message) +
                "<form method='post' action='/login'><label>Work email <input type='email' name='email' id='email'"
                " required autofocus></label> <button id='continue'>Continue</button></form>", status)


def password_form(email: str, message: str = "", status: int = 200) -> HTMLResponse:
    return page("Sign in", f"<p class='error'>{html.escape(message)}</p>" * bool(message) +
                "<form method='post' action='/login/password'>"
                f"<input type='email' name='email' id='email' value='{html.escape(email)}' required>"
                "<label>Password <input type='password' name='password' id='password' required autofocus></label>"
                " <button id='sign-in'>Sign in</button></form>", status)


def signed_in(user_id: int, conn) -> Response:
    response = RedirectResponse("/dashboard", 303)
    response.set_cookie(SESSION_COOKIE, db.create_session(conn, user_id), max_age=db.SESSION_TTL, httponly=True,
                        samesite="lax", secure=SECURE_COOKIES)
    response.delete_cookie(STATE_COOKIE)
    return response


def to_identity_provider(url: str, state: str) -> Response:
    response = RedirectResponse(url, 302)
    response.set_cookie(STATE_COOKIE, state, max_age=sso.LOGIN_TTL, httponly=True, samesite="lax",
                        secure=SECURE_COOKIES)
    return response


# ---- the login the app always had, now asking for the email first ---------------------------
@app.get("/")
def home(request: Request):
    return RedirectResponse("/dashboard" if db.session_user(request.cookies.get(SESSION_COOKIE)) else "/login", 302)


@app.get("/login")
def login_page(idp_initiated_login: str | None = None, error: str | None = None,
               error_description: str | None = None):
    if idp_initiated_login:  # this is the initiate-login URL registered in the Scalekit dashboard
        try:
            with db.transaction() as conn:
                return to_identity_provider(*sso.start_idp_initiated_login(conn, idp_initiated_login))
        except sso.SSOError as exc:
            return email_form(str(exc), exc.status)
    if error:
        return email_form(f"Single sign-on failed: {error_description or error}", 400)
    return email_form()


# region home_realm_discovery
@app.post("/login")
def login_email(email: str = Form(...)):
    """Step 1: the email decides. SSO domains go to their identity provider, everyone else to a password."""
    email = email.strip().lower()
    if "@" not in email:
        return email_form("Enter your work email address.", 400)
    try:
        if sso.has_sso(email):
            return RedirectResponse("/auth/sso?email=" + quote(email), 303)
    except sso.SSOError as exc:  # Scalekit is down: a password still works
        return password_form(email, str(exc))
    return password_form(email)
# endregion home_realm_discovery


@app.post("/login/password")
def login_password(email: str = Form(...), password: str = Form(...)):
    with db.transaction() as conn:
        user = conn.execute("SELECT * FROM users WHERE email = ? AND active = 1", (email.strip(),)).fetchone()
        if user is None or not db.password_matches(password, user["password_hash"]):
            return password_form(email, "Incorrect email or password.", 401)
        return signed_in(user["id"], conn)


@app.post("/logout")
def logout(request: Request):
    db.end_session(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# ---- enterprise SSO ---------------------------------------------------------------------------
# region sso_routes
@app.get("/auth/sso")
def sso_start(email: str | None = None, org: str | None = None):
    """Start an SSO login for an email (its domain picks the connection) or for an organization slug."""
    try:
        with db.transaction() as conn:
            if org:
                row = conn.execute("SELECT scalekit_organization_id FROM organizations WHERE slug = ?",
                                   (org,)).fetchone()
                if row is None or row["scalekit_organization_id"] is None:
                    return email_form("This organization does not use single sign-on.", 404)
                return to_identity_provider(*sso.start_login(conn, organization_id=row["scalekit_organization_id"]))
            if not email or "@" not in email or not sso.has_sso(email):
                return email_form("Single sign-on is not set up for this email domain.", 400)
            return to_identity_provider(*sso.start_login(conn, email=email.strip().lower()))
    except sso.SSOError as exc:  # Scalekit is down (503)
        return email_form(str(exc), exc.status)


@app.get("/auth/callback")
def sso_callback(request: Request, code: str | None = None, state: str | None = None, error: str | None = None,
                 error_description: str | None = None):
    if error:
        return email_form(f"Single sign-on failed: {error_description or error}", 400)
    try:
        user_id = sso.finish_login(code=code, state=state, cookie_state=request.cookies.get(STATE_COOKIE))
    except sso.SSOError as exc:
        return email_form(str(exc), exc.status)
    with db.transaction() as conn:
        return signed_in(user_id, conn)
# endregion sso_routes


# ---- the app ------------------------------------------------------------------------------------
@app.get("/dashboard")
def dashboard(request: Request):
    user = db.session_user(request.cookies.get(SESSION_COOKIE))
    if user is None:
        return RedirectResponse("/login", 302)
    with db.transaction() as conn:
        projects = conn.execute("SELECT name FROM projects WHERE organization_id = ?", (user["organization_id"],))
        items = "".join(f"<li>{html.escape(p['name'])}</li>" for p in projects)
    admin = "<p><a href='/admin' id='admin'>Organization settings</a></p>" if user["role"] == "admin" else ""
    return page(user["org_name"], f"<p id='who'>Signed in as {html.escape(user['email'])} ({user['role']})</p>"
                f"<ul id='projects'>{items}</ul>{admin}"
                "<form method='post' action='/logout'><button id='logout'>Sign out</button></form>")


@app.get("/api/me")
def me(request: Request):
    user = db.session_user(request.cookies.get(SESSION_COOKIE))
    if user is None:
        return JSONResponse({"error": "not signed in"}, 401)
    return {"id": user["id"], "email": user["email"], "name": user["name"], "role": user["role"],
            "organization": user["org_slug"]}


@app.get("/api/orgs/{slug}/projects")
def org_projects(slug: str, request: Request):
    user = db.session_user(request.cookies.get(SESSION_COOKIE))
    if user is None:
        return JSONResponse({"error": "not signed in"}, 401)
    if user["org_slug"] != slug:  # one tenant never sees another's data
        return JSONResponse({"error": "not found"}, 404)
    with db.transaction() as conn:
        rows = conn.execute("SELECT id, name FROM projects WHERE organization_id = ?", (user["organization_id"],))
        return {"organization": slug, "projects": [dict(r) for r in rows]}


@app.get("/api/orgs/{slug}/users")
def org_users(slug: str, request: Request):
    user = org_admin(request)
    if user is None:
        return JSONResponse({"error": "organization admins only"}, 403)
    if user["org_slug"] != slug:
        return JSONResponse({"error": "not found"}, 404)
    with db.transaction() as conn:
        rows = conn.execute("SELECT id, email, name, role, active FROM users WHERE organization_id = ? ORDER BY id",
                            (user["organization_id"],))
        return {"organization": slug, "users": [{**dict(r), "active": bool(r["active"])} for r in rows]}


# ---- organization admin page: SSO onboarding, admin portal, domain verification -------------------
def org_admin(request: Request):
    user = db.session_user(request.cookies.get(SESSION_COOKIE))
    return user if user is not None and user["role"] == "admin" else None


@app.get("/admin")
def admin_page(request: Request):
    user = org_admin(request)
    if user is None:
        return page("Forbidden", "<p>Only organization admins can open this page.</p>", 403)
    org_id = user["scalekit_organization_id"]
    if org_id is None:
        return page(f"{user['org_name']}: single sign-on", "<form method='post' action='/admin/sso'>"
                    "<button id='enable-sso'>Set up single sign-on</button></form>")
    rows = "".join(f"<tr><td>{html.escape(d['domain'])}</td><td class='status'>{d['status']}</td>"
                   f"<td><code>{html.escape(d['txt_name'])}</code> <code>{html.escape(d['txt_value'])}</code></td></tr>"
                   for d in sso.domains(org_id))
    return page(f"{user['org_name']}: single sign-on",
                "<form method='post' action='/admin/portal'><button id='portal'>Configure SSO and directory sync"
                "</button></form><h2>Domains</h2><p>Publish each pending domain's DNS TXT record; Scalekit then"
                f" verifies it.</p><table id='domains'>{rows}</table>"
                "<form method='post' action='/admin/domains'><input name='domain' id='domain' required"
                " placeholder='example.com'> <button id='add-domain'>Add domain</button></form>")


@app.post("/admin/sso")
def admin_enable_sso(request: Request):
    user = org_admin(request)
    if user is None:
        return page("Forbidden", "<p>Only organization admins can do this.</p>", 403)
    with db.transaction() as conn:
        sso.enable_sso(conn, conn.execute("SELECT * FROM organizations WHERE id = ?",
                                          (user["organization_id"],)).fetchone())
    return RedirectResponse("/admin", 303)


@app.post("/admin/portal")
def admin_portal(request: Request):
    user = org_admin(request)
    if user is None or user["scalekit_organization_id"] is None:
        return page("Forbidden", "<p>Only organization admins with SSO set up can do this.</p>", 403)
    return RedirectResponse(sso.portal_link(user["scalekit_organization_id"]), 303)


@app.post("/admin/domains")
def admin_add_domain(request: Request, domain: str = Form(...)):
    user = org_admin(request)
    if user is None or user["scalekit_organization_id"] is None:
        return page("Forbidden", "<p>Only organization admins with SSO set up can do this.</p>", 403)
    try:
        sso.add_domain(user["scalekit_organization_id"], domain)
    except Exception:
        return page("Domain not added", f"<p class='error'>{html.escape(domain)} could not be added (invalid, "
                    "or registered already).</p><p><a href='/admin'>Back</a></p>", 400)
    return RedirectResponse("/admin", 303)


# ---- directory sync webhooks --------------------------------------------------------------------
@app.post("/webhooks/scalekit")
async def scalekit_webhook(request: Request):
    body = await request.body()
    try:
        event = directory_sync.verify(dict(request.headers), body)
    except directory_sync.WebhookRejected:
        return JSONResponse({"error": "invalid signature"}, 401)
    return {"status": directory_sync.handle(request.headers["webhook-id"], event)}


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "3100")))
