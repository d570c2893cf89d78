"""Scalekit wiring for this FastMCP server: who may call it, and with which scopes.

- `auth` (FastMCP's ScalekitProvider) publishes the protected-resource metadata, answers 401 with
  the challenge, and checks each bearer token: signature (keys from {env}/keys, cached, re-fetched
  on an unknown kid), issuer (Scalekit's two forms), audience (this server's resource id), expiry;
  a token it accepted is not checked again until it expires.
- `ToolScopes` gives each tool its scope: a call without it gets 403 insufficient_scope (step-up).
- `AuditLog` writes one line per tool call: subject, client, scopes, tool, result.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time

from fastmcp.server.auth import AccessToken
from fastmcp.server.auth.providers.jwt import JWTVerifier
from fastmcp.server.auth.providers.scalekit import ScalekitProvider
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import Middleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.types import ASGIApp, Receive, Scope, Send

# region config
ENV_URL = os.environ["SCALEKIT_ENVIRONMENT_URL"].rstrip("/")
RESOURCE_ID = os.environ["SCALEKIT_RESOURCE_ID"]  # res_..., from the MCP server's page in the dashboard
APP_URL = os.environ.get("APP_URL", "http://localhost:8000").rstrip("/")  # this server's public origin
MCP_PATH = "/mcp"
RESOURCE_METADATA_URL = f"{APP_URL}/.well-known/oauth-protected-resource{MCP_PATH}"
# endregion config

# region scopes
READ_SCOPE = "todo:read"  # every request needs it; the 401 challenge asks for it
TOOL_SCOPES = {"whoami": "todo:read", "add_todo": "todo:write"}
# endregion scopes


# region verified-tokens
class CachingJWTVerifier(JWTVerifier):
    """FastMCP's JWT verifier, keeping each token it accepted (by the exact token string) until its exp:
    checking a signature costs more than a tool call. At most MAX tokens (the oldest goes first)."""

    MAX = 4096

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.accepted: dict[str, AccessToken] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        known = self.accepted.get(token)
        if known is not None and time.time() < known.expires_at:
            return known
        access = await super().verify_token(token)
        if access is not None and access.expires_at is not None:  # FastMCP lets tokens without exp through
            if len(self.accepted) >= self.MAX:
                del self.accepted[next(iter(self.accepted))]
            self.accepted[token] = access
        return access
# endregion verified-tokens


# region provider
class ScalekitTokenVerifier(CachingJWTVerifier):
    """FastMCP's JWT verifier without its scope check. With required_scopes, FastMCP 4.2.3 refuses a
    valid token that lacks a scope with 401 invalid_token, which sends clients back to a full login;
    the provider's own check below answers 403 insufficient_scope, so they step up instead."""

    def get_challenge_scopes(self, required_scopes: list[str] | None = None) -> list[str]:
        return required_scopes or [READ_SCOPE]  # keeps scope= in the 401 and 403 challenges


auth = ScalekitProvider(
    environment_url=ENV_URL,
    resource_id=RESOURCE_ID,
    base_url=APP_URL,
    required_scopes=[READ_SCOPE],
    scopes_supported=sorted(set(TOOL_SCOPES.values())),
    token_verifier=ScalekitTokenVerifier(
        jwks_uri=f"{ENV_URL}/keys",
        issuer=[ENV_URL, f"{ENV_URL}/resources/{RESOURCE_ID}"],  # today's form and the one Scalekit moves to
        audience=RESOURCE_ID,
        algorithm="RS256",
        jwks_refresh_interval=5,  # an unknown kid re-fetches the keys, at most every 5 s
    ),
)
# endregion provider


# region root-metadata
def root_metadata_route():
    """The metadata route at /.well-known/oauth-protected-resource too (one MCP server on this host)."""
    from starlette.routing import Route

    suffixed = next(r for r in auth.get_routes(mcp_path=MCP_PATH)
                    if getattr(r, "path", "") == f"/.well-known/oauth-protected-resource{MCP_PATH}")
    return Route("/.well-known/oauth-protected-resource", suffixed.endpoint, methods=["GET", "OPTIONS"])
# endregion root-metadata


# region audit
audit_log = logging.getLogger("audit")
audit_log.addHandler(logging.StreamHandler(sys.stderr))
audit_log.setLevel(logging.INFO)
audit_log.propagate = False


def audit(token, tool: str, result: str) -> None:
    """One JSON line per tool call: who (sub), through which client, with which scopes, and the result."""
    claims = (token.claims or {}) if token else {}
    audit_log.info(json.dumps({"audit": "tool_call", "sub": claims.get("sub"), "client_id": claims.get("client_id"),
                               "scope": " ".join(token.scopes) if token else "", "tool": tool, "result": result}))


class AuditLog(Middleware):
    async def on_call_tool(self, context, call_next):
        token = get_access_token()
        try:
            result = await call_next(context)
        except Exception:
            audit(token, context.message.name, "error")
            raise
        audit(token, context.message.name, "ok")
        return result
# endregion audit


# region tool-scopes
MAX_BODY = 1024 * 1024


class ToolScopes:
    """ASGI middleware: a tools/call needs its tool's scope, else 403 insufficient_scope, which tells
    the client which scope to ask for. It runs after FastMCP's bearer authentication."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if scope["type"] != "http" or scope["method"] != "POST" or not isinstance(user, AuthenticatedUser):
            return await self.app(scope, receive, send)
        body = await read_body(receive)
        if len(body) > MAX_BODY:
            return await send_json(send, 413, {"error": "request_too_large"})
        tools = called_tools(body)
        missing = sorted({TOOL_SCOPES[t] for t in tools if t in TOOL_SCOPES} - set(user.scopes))
        if missing:
            audit(user.access_token, ",".join(tools), "denied")
            return await insufficient_scope(send, sorted(set(user.scopes) | set(missing)))
        await self.app(scope, replay(body, receive), send)


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body") or len(body) > MAX_BODY:
            return body


def replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return again


def called_tools(body: bytes) -> list[str]:
    """Names of the tools a JSON-RPC message (or batch) calls."""
    try:
        messages = json.loads(body)
    except ValueError:
        return []
    messages = messages if isinstance(messages, list) else [messages]
    return [m["params"]["name"] for m in messages if isinstance(m, dict) and m.get("method") == "tools/call"
            and isinstance(m.get("params"), dict) and isinstance(m["params"].get("name"), str)]


async def insufficient_scope(send: Send, scopes: list[str]) -> None:
    challenge = (f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}", '
                 f'resource_metadata="{RESOURCE_METADATA_URL}"')
    await send_json(send, 403, {"error": "insufficient_scope", "error_description": f"needs scope {' '.join(scopes)}"},
                    [(b"www-authenticate", challenge.encode())])


async def send_json(send: Send, status: int, doc: dict, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": json.dumps(doc).encode()})
# endregion tool-scopes
