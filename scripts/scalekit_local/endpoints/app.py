"""The HTTP app: every route the environment serves, in one table, and the middleware around them.
Starlette tries the routes in order; a path served with several methods has a route per method."""
from __future__ import annotations

import logging
import re

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..cross.faults import FaultMiddleware
from ..domain.context import Context
from . import admin, bridge, directories, idp_initiated, login, mcp_as, oidc, portal, token_matrix
from .admin_guard import AdminGuard

log = logging.getLogger("scalekit_local.http")
OAUTH_PATHS = ("/oauth/", "/ui/", "/oidc/", "/userinfo", "/keys", "/.well-known/")  # they change no management object

DIRECTORY = "/_local/directories/{dir_id}"
ROUTES = [
    # OAuth 2.0 and OpenID Connect (oidc.py)
    Route("/.well-known/openid-configuration", oidc.openid_configuration),
    Route("/keys", oidc.keys),
    Route("/oauth/authorize", oidc.authorize, methods=["GET", "POST"]),
    Route("/oauth/token", oidc.token, methods=["POST"]),
    Route("/oidc/logout", oidc.logout, methods=["GET", "POST"]),
    Route("/userinfo", oidc.userinfo, methods=["GET", "POST"]),
    # login pages (login.py)
    Route("/ui/login", login.login_page),
    Route("/ui/login", login.login_submit, methods=["POST"]),
    Route("/ui/sso", login.sso_submit, methods=["POST"]),
    Route("/ui/idp", login.idp_page),
    Route("/ui/idp", login.idp_submit, methods=["POST"]),
    Route("/ui/social", login.social_page),
    Route("/ui/social", login.social_submit, methods=["POST"]),
    # admin routes: health, counters, webhooks, events, faults (admin.py)
    Route("/_local/health", admin.health),
    Route("/_local/stats", admin.stats),
    Route("/_local/webhooks", admin.list_endpoints),
    Route("/_local/webhooks", admin.add_endpoint, methods=["POST"]),
    Route("/_local/webhooks/deliveries", admin.list_deliveries),
    Route("/_local/webhooks/{endpoint_id}", admin.delete_endpoint, methods=["DELETE"]),
    Route("/_local/events", admin.list_events),
    Route("/_local/events", admin.post_event, methods=["POST"]),
    Route("/_local/faults", admin.list_faults),
    Route("/_local/faults", admin.add_fault, methods=["POST"]),
    Route("/_local/faults", admin.clear_faults, methods=["DELETE"]),
    Route("/_local/faults/{fault_id}", admin.remove_fault, methods=["DELETE"]),
    # the SCIM stand-in (directories.py)
    Route(DIRECTORY, directories.get_directory),
    Route(f"{DIRECTORY}/users", directories.post_user, methods=["POST"]),
    Route(f"{DIRECTORY}/users/{{item_id}}", directories.patch_user, methods=["PATCH"]),
    Route(f"{DIRECTORY}/users/{{item_id}}", directories.delete_user, methods=["DELETE"]),
    Route(f"{DIRECTORY}/groups", directories.post_group, methods=["POST"]),
    Route(f"{DIRECTORY}/groups/{{item_id}}", directories.patch_group, methods=["PATCH"]),
    Route(f"{DIRECTORY}/groups/{{item_id}}", directories.delete_group, methods=["DELETE"]),
    # IdP-initiated login (idp_initiated.py)
    Route("/_local/idp-initiated-login", idp_initiated.idp_initiated_login, methods=["POST"]),
    # the MCP authorization server (mcp_as.py; its authorize and token go through oidc.py)
    Route("/.well-known/oauth-authorization-server/resources/{res_id}", mcp_as.metadata),
    Route("/resources/{res_id}/.well-known/oauth-authorization-server", mcp_as.metadata),
    Route("/resources/{res_id}/register", mcp_as.register, methods=["POST"]),
    Route("/oauth/mcp/login", mcp_as.login_page),
    Route("/oauth/mcp/login", mcp_as.login_submit, methods=["POST"]),
    Route("/oauth/mcp/consent", mcp_as.consent_page),
    Route("/oauth/mcp/consent", mcp_as.consent_submit, methods=["POST"]),
    # the custom-auth bridge (bridge.py)
    Route("/api/v1/connections/{conn}/auth-requests/{lrid}/user", bridge.user_details, methods=["POST"]),
    Route("/sso/v1/connections/{conn}/partner:callback", bridge.partner_callback),
    # the token matrix (token_matrix.py)
    Route("/_local/token-matrix", token_matrix.token_matrix, methods=["POST"]),
    # the admin portal and its admin routes (portal.py)
    Route("/magicLink/{link_id}", portal.portal_page),
    Route("/_local/portal-links/{link_id}/expire", portal.expire_link, methods=["POST"]),
    Route("/_local/users/password", portal.set_password, methods=["POST"]),
    Route("/_local/domains/{domain_id}/verify", portal.verify_domain_route, methods=["POST"]),
    # the mailbox: passwordless emails and invitations (admin.py)
    Route("/_local/mailbox", admin.mailbox_page),
    Route("/_local/mailbox.json", admin.mailbox_json),
    Route("/_local/mailbox", admin.clear_mailbox, methods=["DELETE"]),
]


class CollapseSlashes:
    """`https://host//oauth/token` (an env URL with a trailing slash) reaches the same route."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = dict(scope)
            scope["path"] = re.sub(r"/{2,}", "/", scope["path"])
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


async def not_found(request: Request, exc) -> Response:
    status = getattr(exc, "status_code", 404)
    return JSONResponse({"error": "not_found" if status == 404 else "method_not_allowed",
                         "error_description": f"{request.method} {request.url.path} is not served here"},
                        status_code=status)


async def server_error(request: Request, exc) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": "server_error", "error_description": "internal error in the local environment"},
                        status_code=500)


class ChangeMarker:
    """After every request that may change management objects, the next save (--persist,
    state/persistence.py) compares them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and (scope["method"] not in ("GET", "HEAD", "OPTIONS")
                                            or scope["path"].startswith("/magicLink/")) \
                    and not scope["path"].startswith(OAUTH_PATHS):
                scope["app"].state.ctx.store.management_changed()


def build_app(ctx: Context) -> Starlette:
    app = Starlette(routes=ROUTES, exception_handlers={404: not_found, 405: not_found, 500: server_error})
    app.state.ctx = ctx
    app.add_middleware(FaultMiddleware)  # inside CollapseSlashes: matches normalised paths
    app.add_middleware(AdminGuard)  # /_local/ refuses cross-site requests (admin_guard.py)
    app.add_middleware(ChangeMarker)  # --persist: compare management objects after a change
    app.add_middleware(CollapseSlashes)
    return app
