"""scripts/test_mcp_server.py: bad arguments, and how it fails against servers that are not protected
the way MCP clients and Scalekit need: nothing listening, no auth at all, and the MCP Python SDK's
default auth wiring (its challenges carry no scope). Passing runs, against every MCP template in both
issuer forms, are in tests/template_suites/test_mcp_templates.py."""
from __future__ import annotations

import json
import socket
import ssl
import threading
import time

import pytest
from script_helpers import assert_failed, assert_no_leaks, base_env, result, run_many, run_script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThreadedServer:
    """uvicorn on 127.0.0.1:port in a thread."""

    def __init__(self, app, port: int):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the test server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_bad_arguments_exit_2(workdir):
    env = base_env()
    bad = (("not a url",), ("ftp://localhost/mcp",), ("http://localhost:1/mcp", "--write-tool", "add_todo"),
           ("http://localhost:1/mcp", "--login", "no-colon"), ("http://localhost:1/mcp", "--tool-args", "[1]"))
    runs = run_many({i: ("test_mcp_server.py", args, env, workdir) for i, args in enumerate(bad)})
    for i in range(len(bad)):
        assert result(runs, i).code == 2, result(runs, i)
    assert "JSON object" in result(runs, len(bad) - 1).stderr


def test_nothing_listening_is_a_network_failure(workdir):
    run = run_script("test_mcp_server.py", f"http://127.0.0.1:{free_port()}/mcp", "--json", "--timeout", "3",
                     env=base_env(), cwd=workdir)
    assert_failed(run, 4, "connection refused")
    assert run.doc["server_url"].endswith("/mcp")


def test_an_unprotected_server_fails(workdir):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def mcp(request):  # answers every MCP request, token or not
        body = await request.json()
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "open", "version": "1"}}})

    port = free_port()
    server = ThreadedServer(Starlette(routes=[Route("/mcp", mcp, methods=["POST"])]), port)
    try:
        run = run_script("test_mcp_server.py", f"http://localhost:{port}/mcp", "--json", env=base_env(), cwd=workdir)
    finally:
        server.stop()
    assert_failed(run, 5, "not protected")
    assert run.doc["checks"][0]["name"] == "mcp endpoint"


@pytest.fixture(scope="module")
def sdk_default_server(local_scalekit_factory):
    """The MCP Python SDK's own auth wiring (MCPServer + AuthSettings + a PyJWT verifier), registered in a
    local environment: it validates tokens correctly, but its 401 and 403 challenges name no scope."""
    import jwt
    from mcp.server import MCPServer
    from mcp.server.auth.provider import AccessToken, TokenVerifier
    from mcp.server.auth.settings import AuthSettings

    port = free_port()
    url = f"http://localhost:{port}/mcp"
    env = local_scalekit_factory(extra_args=("--mcp-resource", url))
    resource = env.mcp_resources[url]
    keys = jwt.PyJWKClient(f"{env.url}/keys", ssl_context=ssl.create_default_context(cafile=env.ca_bundle))

    class Verifier(TokenVerifier):
        async def verify_token(self, token: str) -> AccessToken | None:
            try:
                claims = jwt.decode(token, keys.get_signing_key_from_jwt(token), algorithms=["RS256"], audience=resource,
                                    issuer=[env.url, f"{env.url}/resources/{resource}"])
            except jwt.PyJWTError:
                return None
            return AccessToken(token=token, client_id=claims["client_id"], scopes=claims.get("scope", "").split(),
                               expires_at=claims["exp"], subject=claims["sub"], claims=claims)

    mcp = MCPServer("sdk-default", token_verifier=Verifier(), auth=AuthSettings(
        issuer_url=f"{env.url}/resources/{resource}", resource_server_url=url, required_scopes=["todo:read"],
        validate_token_resource=False))

    @mcp.tool()
    def whoami() -> str:
        return "someone"

    server = ThreadedServer(mcp.streamable_http_app(json_response=True, host="127.0.0.1"), port)
    yield env, url
    server.stop()


@pytest.mark.slow
def test_the_sdk_default_wiring_fails_on_its_challenges(sdk_default_server, workdir):
    env, url = sdk_default_server
    run = run_script("test_mcp_server.py", url, "--json", env=base_env(**env.env_vars()), cwd=workdir, timeout=120)
    assert_failed(run, 5, "401 challenge", "no scope")
    assert_no_leaks(run, env.client_secret)
    checks = {c["name"]: c for c in run.doc["checks"]}
    # Everything else about it is right: the token checks pass; only the step-up hint is missing.
    for name in ("resource metadata", "authorization server", "mcp client", "valid token", "forged tokens",
                 "query-string token", "session without token", "session of another user"):
        assert checks[name]["status"] == "pass", json.dumps(checks[name])
    assert checks["scope shortfall"]["status"] == "fail"
    assert "scope=None" in checks["scope shortfall"]["message"]
    assert checks["well-known metadata"]["data"]["root_served"] is False
