"""Shared pieces for the MCP authorization-server and custom-auth bridge tests.

One seed (the default seed plus MCP resources on free loopback ports) is written once per test
session, so `local_scalekit_factory(seed=...)` hands both test files the same running instances.
`ProtectedMcpServer` is a tiny MCP server built with the `mcp` package's own MCPServer whose
token verifier is the Scalekit Python SDK's validate_token(issuer=..., audience=[res_id]).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SEED = REPO_ROOT / "scripts" / "scalekit_local" / "default_seed.yaml"
RES_MAIN = "res_70000000000004101"     # the protected MCP server of the tests
RES_OTHER = "res_70000000000004102"    # another MCP server (audience tests)
RES_BRIDGE = "res_70000000000004103"   # custom auth (bridge)
RES_BRIDGE_SHORT = "res_70000000000004104"  # custom auth with a 1 s state lifetime
RES_SCOPED_ISS = "res_70000000000004105"  # token_issuer: resource
BRIDGE_CONN = "conn_70000000000005001"
BRIDGE_SHORT_CONN = "conn_70000000000005002"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class McpSeed:
    path: Path
    mcp_port: int
    bridge_port: int

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.mcp_port}/mcp"

    @property
    def other_url(self) -> str:
        return f"http://127.0.0.1:{self.mcp_port}/other-mcp"

    @property
    def bridge_login_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}/login"

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}/mcp"


_SEED: McpSeed | None = None
_LOCK = threading.Lock()


def mcp_seed(tmp_path_factory) -> McpSeed:
    global _SEED
    with _LOCK:
        if _SEED is None:
            mcp_port, bridge_port = free_port(), free_port()
            seed = yaml.safe_load(DEFAULT_SEED.read_text(encoding="utf-8"))
            seed["resources"] = [
                {"id": RES_MAIN, "name": "Test MCP server", "urls": [f"http://127.0.0.1:{mcp_port}/mcp"],
                 "scopes": ["todo:read", "todo:write"]},
                {"id": RES_OTHER, "name": "Other MCP server", "urls": [f"http://127.0.0.1:{mcp_port}/other-mcp"],
                 "scopes": ["todo:read"], "client_id_metadata_documents": False},
                {"id": RES_BRIDGE, "name": "Custom-auth MCP server", "urls": [f"http://127.0.0.1:{bridge_port}/mcp"],
                 "scopes": ["todo:read"], "client_id_metadata_documents": False,
                 "custom_auth": {"login_url": f"http://127.0.0.1:{bridge_port}/login", "connection_id": BRIDGE_CONN}},
                {"id": RES_BRIDGE_SHORT, "urls": [f"http://127.0.0.1:{bridge_port}/short-mcp"], "scopes": ["todo:read"],
                 "client_id_metadata_documents": False,
                 "custom_auth": {"login_url": f"http://127.0.0.1:{bridge_port}/short-login",
                                 "connection_id": BRIDGE_SHORT_CONN, "state_ttl": 1}},
                {"id": RES_SCOPED_ISS, "urls": [f"http://127.0.0.1:{mcp_port}/scoped-mcp"], "scopes": ["todo:read"],
                 "client_id_metadata_documents": False, "token_issuer": "resource"},
            ]
            path = tmp_path_factory.mktemp("mcp-seed") / "mcp-seed.yaml"
            path.write_text(yaml.safe_dump(seed, sort_keys=False), encoding="utf-8")
            _SEED = McpSeed(path, mcp_port, bridge_port)
        return _SEED


def register_client(session, env_url: str, res_id: str, redirect_uris: list[str], **extra) -> dict:
    response = session.post(f"{env_url}/resources/{res_id}/register",
                            json={"redirect_uris": redirect_uris, "token_endpoint_auth_method": "none",
                                  "client_name": "pytest client", **extra})
    assert response.status_code == 201, response.text
    return response.json()


class ProtectedMcpServer:
    """MCPServer (mcp 2.3) on 127.0.0.1:port/mcp; bearer tokens checked with the Scalekit SDK."""

    def __init__(self, env, res_id: str, port: int, scopes: list[str]):
        import uvicorn
        from mcp.server import MCPServer
        from mcp.server.auth.middleware.auth_context import get_access_token
        from mcp.server.auth.provider import AccessToken, TokenVerifier
        from mcp.server.auth.settings import AuthSettings
        from scalekit import ScalekitClient
        from scalekit.common.scalekit import TokenValidationOptions

        env_url = env.url
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.validated: list[dict] = []
        self.refused: list[str] = []
        client = ScalekitClient(env_url, env.client_id, env.client_secret)
        # Verifiers accept both issuer forms: {ENV} (live Scalekit today) and {ENV}/resources/{res_id}.
        options = TokenValidationOptions(issuer=[env_url, f"{env_url}/resources/{res_id}"], audience=[res_id])
        outer = self

        class ScalekitVerifier(TokenVerifier):
            async def verify_token(self, token: str) -> AccessToken | None:
                try:
                    claims = await asyncio.to_thread(client.validate_token, token, options)
                except Exception as exc:  # refused: wrong aud/iss, expired, bad signature
                    outer.refused.append(type(exc).__name__)
                    return None
                outer.validated.append(claims)
                # MCP tokens carry their scopes as the `scope` string (no `scopes` array).
                return AccessToken(token=token, client_id=claims.get("client_id", ""), scopes=claims.get("scope", "").split(),
                                   expires_at=claims.get("exp"), subject=claims.get("sub"), claims=claims)

        server = MCPServer("pytest-todo", token_verifier=ScalekitVerifier(),
                           auth=AuthSettings(issuer_url=f"{env_url}/resources/{res_id}", resource_server_url=self.url,
                                             required_scopes=scopes, validate_token_resource=False))

        @server.tool()
        def whoami() -> dict:
            """The caller's identity from the validated access token."""
            claims = get_access_token().claims or {}
            return {"sub": claims.get("sub"), "aud": claims.get("aud"), "iss": claims.get("iss"),
                    "scope": claims.get("scope")}

        app = server.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="pytest-mcp-server")
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test MCP server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def headless_browser(ssl_context):
    """redirect_handler/callback_handler pair per mcp.md §3.1: GET the authorize URL without
    following redirects and read code, state and iss from the Location header."""
    import httpx2
    from mcp.client.auth import AuthorizationCodeResult

    box: dict = {}

    async def redirect_handler(url: str) -> None:
        async with httpx2.AsyncClient(verify=ssl_context, follow_redirects=False, timeout=15) as browser:
            response = await browser.get(url)
        box["authorize_url"] = url
        location = response.headers.get("location", "")
        if response.status_code not in (302, 303) or not location:
            raise RuntimeError(f"authorize did not redirect: HTTP {response.status_code} {response.text[:300]}")
        box["location"] = location

    async def callback_handler():
        params = query(box["location"])
        if "error" in params:
            raise RuntimeError(f"authorization failed: {params}")
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

    return redirect_handler, callback_handler, box
