"""HTTP side of the management API: the admin portal page behind GeneratePortalLink's `location`,
and admin routes for what the hosted service does out of band (a user setting a password, DNS
domain verification, a link running out).

    GET  /magicLink/{link_id}                    the organization's admin portal (HTML); 410 once used or expired
                                                 (links are single use and live 1 minute, guides/admin-portal.mdx)
    POST /_local/portal-links/{link_id}/expire   make a portal link expire now (tests)
    POST /_local/users/password                  JSON {"email"|"user_id", "password"}: lets a user created
                                                 over gRPC log in on the password page
    POST /_local/domains/{domain_id}/verify      mark a domain verified (as the DNS check would)
"""
from __future__ import annotations

import html
import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .safe_input import loads_json


def _store(request: Request):
    return request.app.state.ctx.store


def _page(title: str, body: str, status: int = 200) -> Response:
    doc = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           "<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem}"
           "dt{font-weight:600}dd{margin:0 0 .6rem 0}.error{color:#b00020}</style></head>"
           f"<body>{body}</body></html>")
    return HTMLResponse(doc, status_code=status, headers={"Cache-Control": "no-store"})


async def portal_page(request: Request) -> Response:
    store = _store(request)
    link_id = request.path_params["link_id"]
    with store.lock:
        link = store.portal_links.get(link_id)
        org = store.organization(link.organization_id) if link else None
        if link is None or org is None:
            return _page("Admin portal link not found",
                         "<h1 class=\"error\">Admin portal link not found</h1><p>This link is unknown or its "
                         "organization was deleted. Ask the application for a new link.</p>", 404)
        if link.used_at is not None:
            return _page("Admin portal link already used",
                         "<h1 class=\"error\">This admin portal link was already used</h1><p>Each link opens "
                         "the portal once. Ask the application for a new link.</p>", 410)
        if link.expires_at <= time.time():
            return _page("Admin portal link expired",
                         "<h1 class=\"error\">This admin portal link has expired</h1><p>Admin portal links "
                         "are valid for one minute. Ask the application for a new link.</p>", 410)
        link.used_at = time.time()
        connections = [c for c in store.connections.values() if c.organization_id == org.id]
        domains = sorted(d.domain for d in store.domains.values() if d.organization_id == org.id)
        directories = [d for d in store.directories.values() if d.organization_id == org.id]
    e = html.escape
    conn_rows = "".join(f"<li>{e(c.type)} ({e(c.provider)}) {e(c.id)}: {'enabled' if c.enabled else 'disabled'}</li>"
                        for c in connections) or "<li>none</li>"
    dir_rows = "".join(f"<li>{e(d.name)} ({e(d.provider)}) {e(d.id)}: {len(d.users)} users</li>" for d in directories) \
        or "<li>none</li>"
    expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(link.expires_at))
    body = (f"<h1>Admin portal: {e(org.display_name)}</h1>"
            f"<dl><dt>Organization id</dt><dd data-org-id>{e(org.id)}</dd>"
            f"<dt>External id</dt><dd>{e(org.external_id or '-')}</dd>"
            f"<dt>Domains</dt><dd>{e(', '.join(domains) or '-')}</dd>"
            f"<dt>Features</dt><dd>{e(', '.join(link.features) or 'all')}</dd>"
            f"<dt>Link expires</dt><dd>{expires}</dd></dl>"
            f"<h2>Single sign-on connections</h2><ul>{conn_rows}</ul>"
            f"<h2>Directories</h2><ul>{dir_rows}</ul>"
            "<p>Local Scalekit environment: configuration is read-only here.</p>")
    return _page(f"Admin portal: {org.display_name}", body)


async def _json(request: Request) -> dict | Response:
    try:
        data = loads_json(await request.body() or b"{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return JSONResponse({"error": "invalid_request", "error_description": "send a JSON object"}, status_code=400)
    return data


async def expire_link(request: Request) -> Response:
    store = _store(request)
    with store.lock:
        link = store.portal_links.get(request.path_params["link_id"])
        if link is None:
            return JSONResponse({"error": "not_found", "error_description": "unknown portal link"}, status_code=404)
        link.expires_at = time.time() - 1
    return JSONResponse({"id": link.id, "expired": True})


async def set_password(request: Request) -> Response:
    data = await _json(request)
    if isinstance(data, Response):
        return data
    store = _store(request)
    password = data.get("password")
    if not isinstance(password, str) or len(password) < 8:
        return JSONResponse({"error": "invalid_request", "error_description": "password must be at least 8 characters"},
                            status_code=400)
    with store.lock:
        user = store.users.get(data.get("user_id") or "") or (store.user_by_email(data["email"])
                                                               if isinstance(data.get("email"), str) else None)
        if user is None:
            return JSONResponse({"error": "not_found", "error_description": "no user with that user_id or email"},
                                status_code=404)
        user.password = password
    return JSONResponse({"user_id": user.id, "email": user.email, "password_set": True})


async def verify_domain_route(request: Request) -> Response:
    from .services.domains import verify_domain

    store = _store(request)
    dom = store.domains.get(request.path_params["domain_id"])
    if dom is None:
        return JSONResponse({"error": "not_found", "error_description": "unknown domain id"}, status_code=404)
    verify_domain(store, dom)
    return JSONResponse({"id": dom.id, "domain": dom.domain, "verification_status": dom.verification_status})


def routes() -> list[Route]:
    return [
        Route("/magicLink/{link_id}", portal_page),
        Route("/_local/portal-links/{link_id}/expire", expire_link, methods=["POST"]),
        Route("/_local/users/password", set_password, methods=["POST"]),
        Route("/_local/domains/{domain_id}/verify", verify_domain_route, methods=["POST"]),
    ]
