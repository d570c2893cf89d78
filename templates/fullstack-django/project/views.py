"""The app's pages and API routes; the Scalekit wiring is in scalekit_auth.py."""
from django.http import HttpResponse, JsonResponse
from django.utils.html import escape

from scalekit_auth import api_login_required, page_login_required, permission_required

# Reserved and standard claims; any other access-token claim was added in the dashboard (Token Claims).
STANDARD_CLAIMS = {"iss", "aud", "sub", "oid", "exp", "iat", "nbf", "jti", "sid", "client_id", "roles", "permissions",
                   "scope", "scopes", "xoid", "xuid", "email", "name", "profile"}
NOTES = {"org_70000000000001001": ["Acme launch plan"], "org_70000000000001002": ["Globex roadmap"]}


def page(title: str, body: str, user: dict | None) -> HttpResponse:
    nav = "<a href='/auth/logout'>Log out</a>" if user else "<a href='/auth/login'>Log in</a>"
    return HttpResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
                        f"<body><nav><a href='/'>Home</a> <a href='/dashboard'>Dashboard</a> "
                        f"<a href='/profile'>Profile</a> {nav}</nav><h1>{escape(title)}</h1>{body}</body></html>")


def healthz(request):
    return JsonResponse({"status": "ok"})


def home(request):
    user = request.scalekit_user
    who = f"<p>Signed in as {escape(user['profile'].get('email', user['sub']))}.</p>" if user else "<p>Signed out.</p>"
    return page("Home", who, user)


# region pages
@page_login_required
def dashboard(request):
    user = request.scalekit_user
    return page("Dashboard", f"<p id='user'>Welcome, {escape(user['profile'].get('name', user['sub']))}.</p>", user)


@page_login_required
def profile(request):
    user = request.scalekit_user
    custom = {k: v for k, v in user.items() if k not in STANDARD_CLAIMS}  # added under Token Claims
    rows = [("Email", user["profile"].get("email")), ("Name", user["profile"].get("name")),
            ("Organization", user.get("oid")), ("Roles", ", ".join(user.get("roles", []))),
            ("Permissions", ", ".join(user.get("permissions", [])))]
    rows += [(f"Custom claim {k}", v) for k, v in sorted(custom.items())]
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return page("Profile", f"<table id='profile'>{cells}</table>", user)
# endregion pages


# region api
@api_login_required
def me(request):
    user = request.scalekit_user  # a session's user or a bearer token's: the same shape
    return JsonResponse({"sub": user["sub"], "email": user["profile"].get("email"),
                         "name": user["profile"].get("name"), "oid": user.get("oid"),
                         "roles": user.get("roles", []), "permissions": user.get("permissions", [])})


@permission_required("organization:write")
def admin(request):
    return JsonResponse({"sub": request.scalekit_user["sub"], "admin": True})


@api_login_required
def notes(request, org_id: str):
    if org_id != request.scalekit_user.get("oid"):  # tenant isolation: only the organization the user signed in to
        return JsonResponse({"error": "not a member of this organization"}, status=403)
    return JsonResponse({"organization_id": org_id, "notes": NOTES.get(org_id, [])})
# endregion api
