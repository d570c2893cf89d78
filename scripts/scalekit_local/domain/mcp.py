"""MCP logins and clients: what the MCP authorization server's HTTP endpoints (endpoints/mcp_as.py,
endpoints/bridge.py) share with the gRPC services (ClientService resource clients, AuthService): the
redirect URIs an MCP client may register, and a pending MCP login getting its user and session."""
from __future__ import annotations

import ipaddress

from ..safe_input import split_url
from ..state.records import Pending, User


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_uri_problem(uri) -> str | None:
    """Redirect URIs must be https, or http on a loopback host; no fragment (OAuth 2.1, MCP)."""
    if not isinstance(uri, str) or not uri:
        return "redirect URIs must be non-empty strings"
    parts = split_url(uri)
    if parts is None:
        return f"redirect URI {uri!r} is not a well-formed URL (host, port)"
    if parts.fragment or "#" in uri:
        return f"redirect URI {uri!r} must not have a fragment"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return None
    return f"redirect URI {uri!r} must use https, or http on a loopback host (localhost, 127.0.0.1, [::1])"


def set_user(ctx, pending: Pending, user: User, connection_id: str) -> None:
    """The pending login is for `user` (signed in through `connection_id`), in a new session unless it has one."""
    org_id = user.memberships[0].organization_id if user.memberships else None
    pending.user_id, pending.organization_id, pending.connection_id = user.id, org_id, connection_id
    if pending.session_id is None:
        pending.session_id = ctx.store.create_session(user.id, org_id, connection_id).id
