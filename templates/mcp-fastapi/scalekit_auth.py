"""Scalekit wiring for this MCP server (the MCP Python SDK's server, mounted in FastAPI).

- `verify_token` checks a bearer token with PyJWT: RS256 signature with Scalekit's keys (`SigningKeys`:
  fetched once, cached, re-fetched on an unknown kid at most every 5 s), issuer (Scalekit's two forms),
  audience (this server's resource id), expiry. `ScalekitAuth` runs it in a worker thread, so a key
  fetch never blocks the event loop, and keeps the claims of verified tokens until they expire
  (`VerifiedTokens`), so a client's next calls skip the signature check.
- `ScalekitAuth`, ASGI middleware around the MCP app, answers 401 with the challenge and 403
  insufficient_scope when the token lacks a scope (per tool), and hands the token to the MCP SDK,
  which binds each MCP session to the user who opened it.
- `protected_resource_metadata()` is served at /.well-known/oauth-protected-resource[/mcp].
- `audit()` writes one line per tool call.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time

import jwt
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

# region config
ENV_URL = os.environ["SCALEKIT_ENVIRONMENT_URL"].rstrip("/")
RESOURCE_ID = os.environ["SCALEKIT_RESOURCE_ID"]  # res_..., from the MCP server's page in the dashboard
APP_URL = os.environ.get("APP_URL", "http://localhost:8000").rstrip("/")  # this server's public origin
MCP_PATH = "/mcp"
RESOURCE_URL = APP_URL + MCP_PATH
RESOURCE_METADATA_URL = f"{APP_URL}/.well-known/oauth-protected-resource{MCP_PATH}"
# Tokens carry iss = the environment URL today; Scalekit moves to the resource-scoped form. Accept both.
ISSUERS = [ENV_URL, f"{ENV_URL}/resources/{RESOURCE_ID}"]
# endregion config

# region scopes
READ_SCOPE = "todo:read"  # every request needs it; the 401 challenge asks for it
TOOL_SCOPES = {"whoami": "todo:read", "add_todo": "todo:write"}
# endregion scopes


# region metadata
def protected_resource_metadata() -> dict:
    """RFC 9728 metadata: MCP clients find Scalekit (the resource-scoped issuer) here."""
    return {"resource": RESOURCE_URL, "authorization_servers": [f"{ENV_URL}/resources/{RESOURCE_ID}"],
            "scopes_supported": sorted(set(TOOL_SCOPES.values())), "bearer_methods_supported": ["header"]}
# endregion metadata


# region verify
class SigningKeys:
    """Scalekit's signing keys ({env}/keys): fetched on first use and cached; fetched again when a token
    names a kid the cache lacks (key rotation), at most every REFETCH_SECONDS, so forged kids cannot
    turn into a stream of requests to Scalekit."""

    REFETCH_SECONDS = 5.0

    def __init__(self, url: str):
        self.client = jwt.PyJWKClient(url, cache_jwk_set=False, cache_keys=False)  # the cache is ours
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched_at: float | None = None
        self.lock = threading.Lock()

    def get(self, kid: str | None) -> jwt.PyJWK:
        with self.lock:
            if self.fetched_at is None or (kid not in self.keys
                                           and time.monotonic() - self.fetched_at >= self.REFETCH_SECONDS):
                self.fetched_at = time.monotonic()
                self.keys = {key.key_id: key for key in self.client.get_signing_keys()}
        if kid not in self.keys:
            raise jwt.InvalidTokenError(f"no signing key with kid {kid!r}")
        return self.keys[kid]


KEYS = SigningKeys(f"{ENV_URL}/keys")


def verify_token(token: str) -> dict:
    """The claims of a token Scalekit issued for this MCP server; raises jwt.InvalidTokenError otherwise.
    It may fetch the keys (blocking), so call it from a worker thread."""
    key = KEYS.get(jwt.get_unverified_header(token).get("kid"))
    return jwt.decode(token, key, algorithms=["RS256"], audience=RESOURCE_ID, issuer=ISSUERS,
                      options={"require": ["iss", "aud", "sub", "exp"]})


class VerifiedTokens:
    """Claims of tokens verify_token accepted, by the exact token string, each until its exp: checking a
    signature costs more than a tool call. Holds at most MAX tokens (the oldest goes first). Used on the
    event loop only, so it needs no lock."""

    MAX = 4096

    def __init__(self):
        self.claims: dict[str, dict] = {}

    def get(self, token: str) -> dict | None:
        claims = self.claims.get(token)
        return claims if claims is not None and time.time() < claims["exp"] else None

    def add(self, token: str, claims: dict) -> None:
        if len(self.claims) >= self.MAX:
            del self.claims[next(iter(self.claims))]
        self.claims[token] = claims
# endregion verify


# region middleware
MAX_BODY = 1024 * 1024


class ScalekitAuth:
    """ASGI middleware in front of the MCP endpoint: no valid token -> 401 with the challenge; a
    missing scope (READ_SCOPE, or the scope of a tool being called) -> 403 insufficient_scope."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.verified = VerifiedTokens()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        token = bearer_token(scope)  # the Authorization header only: ?access_token= is never read
        if token is None:
            return await challenge(send, 401, scope=[READ_SCOPE])
        claims = self.verified.get(token)  # a token verified before and not expired yet
        if claims is None:
            try:
                claims = await asyncio.to_thread(verify_token, token)
            except jwt.InvalidTokenError:
                return await challenge(send, 401, scope=[READ_SCOPE], error="invalid_token")
            self.verified.add(token, claims)
        scopes = str(claims.get("scope", "")).split()  # Scalekit puts scopes in a space-separated string
        body = await read_body(receive) if scope["method"] == "POST" else b""
        if len(body) > MAX_BODY:
            return await send_json(send, 413, {"error": "request_too_large"})
        tools = called_tools(body)
        needed = {READ_SCOPE, *(TOOL_SCOPES[t] for t in tools if t in TOOL_SCOPES)}
        if not needed <= set(scopes):
            if tools:
                audit(claims, ",".join(tools), "denied")
            return await challenge(send, 403, scope=sorted(needed | set(scopes)), error="insufficient_scope")
        # The MCP SDK reads the caller from here and binds each session to (client, issuer, subject).
        scope["user"] = AuthenticatedUser(AccessToken(token=token, client_id=str(claims.get("client_id", "")),
                                                      scopes=scopes, expires_at=claims["exp"], subject=claims["sub"],
                                                      claims=claims))
        scope["auth"] = AuthCredentials(scopes)
        await self.app(scope, replay(body, receive) if scope["method"] == "POST" else receive, send)


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].decode("latin-1").strip() or None
    return None


async def challenge(send: Send, status: int, scope: list[str], error: str | None = None) -> None:
    params = ([f'error="{error}"'] if error else []) + [f'scope="{" ".join(scope)}"',
                                                       f'resource_metadata="{RESOURCE_METADATA_URL}"']
    await send_json(send, status, {"error": error or "unauthorized"},
                    [(b"www-authenticate", ("Bearer " + ", ".join(params)).encode())])


async def send_json(send: Send, status: int, doc: dict, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": json.dumps(doc).encode()})


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
# endregion middleware


# region audit
audit_log = logging.getLogger("audit")
audit_log.addHandler(logging.StreamHandler(sys.stderr))
audit_log.setLevel(logging.INFO)
audit_log.propagate = False


def audit(claims: dict, tool: str, result: str) -> None:
    """One JSON line per tool call: who (sub), through which client, with which scopes, and the result."""
    audit_log.info(json.dumps({"audit": "tool_call", "sub": claims.get("sub"), "client_id": claims.get("client_id"),
                               "scope": claims.get("scope", ""), "tool": tool, "result": result}))
# endregion audit
