"""The custom-auth bridge's user step: the app that keeps its own login posts the user of a pending MCP
login request, over HTTP (endpoints/bridge.py) or with the SDK's update_login_user_details (gRPC
AuthService, services/auth.py). Both land in post_user_details."""
from __future__ import annotations

import time

from .mcp import set_user
from .users import provision_user


class BridgeError(Exception):
    """A refused user step: `status` is the HTTP answer, which services/auth.py maps to a gRPC code."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def post_user_details(ctx, connection_id: str, login_request_id: str, details: dict) -> str:
    """Attach the app's user to a pending login request; returns the login request id.
    Shared by the HTTP endpoint and the gRPC AuthService.UpdateLoginUserDetails."""
    st = ctx.store.mcp
    pending = st.by_login_request(login_request_id or "")
    if pending is None or st.resources[pending.resource_id].connection_id != connection_id:
        raise BridgeError(404, "not_found", f"no pending login request '{login_request_id}' for connection '{connection_id}'")
    if pending.expires_at < time.time():
        raise BridgeError(404, "not_found", f"login request '{login_request_id}' has expired")
    if pending.bridge_state_used:
        raise BridgeError(409, "conflict", f"login request '{login_request_id}' is already complete")
    email = str(details.get("email") or "").strip().lower()
    if "@" not in email:
        raise BridgeError(400, "invalid_request", "user.email is required")
    given = str(details.get("given_name") or "")
    family = str(details.get("family_name") or "")
    user = provision_user(ctx, email, None, given, family)
    with ctx.store.lock:
        if details.get("sub"):
            user.external_id = user.external_id or str(details["sub"])
        if details.get("name") and not user.name:
            user.name = str(details["name"])
    with st.lock:
        pending.session_id = None
        set_user(ctx, pending, user, connection_id)
    ctx.store.count("bridge.user_details")
    return login_request_id
