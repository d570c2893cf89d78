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
from urllib.parse import urlsplit

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
    assert [c["name"] for c in run.doc["checks"]][:2] == ["env file", "mcp endpoint"]


def sdk_server(env, url: str, add_tools) -> ThreadedServer:
    """The MCP Python SDK's own auth wiring (MCPServer + AuthSettings + a PyJWT verifier) for the resource
    registered at `url` in the local environment `env`; `add_tools(mcp)` gives it its tools. It validates
    tokens correctly, but its 401 and 403 challenges name no scope."""
    import jwt
    from mcp.server import MCPServer
    from mcp.server.auth.provider import AccessToken, TokenVerifier
    from mcp.server.auth.settings import AuthSettings

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
    add_tools(mcp)
    return ThreadedServer(mcp.streamable_http_app(json_response=True, host="127.0.0.1"), urlsplit(url).port)


def whoami_only(mcp) -> None:
    @mcp.tool()
    def whoami() -> str:
        return "someone"


def notes_tools(mcp) -> None:
    """No whoami: a tool that needs arguments, a destructive one and a read-only one, listed in that order."""
    from mcp.types import ToolAnnotations

    @mcp.tool()
    def add_note(title: str) -> str:
        return title

    @mcp.tool(annotations=ToolAnnotations(destructiveHint=True))
    def wipe_notes() -> str:
        raise RuntimeError("the checker must never call a destructive tool by itself")

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def list_notes() -> list[str]:
        return ["buy milk"]


def arguments_only(mcp) -> None:
    @mcp.tool()
    def add_note(title: str) -> str:
        return title


@pytest.fixture(scope="module")
def sdk_servers(local_scalekit_factory):
    """Three such servers in one local environment: {"whoami" | "notes" | "arguments": url}, and the env."""
    tools = {"whoami": whoami_only, "notes": notes_tools, "arguments": arguments_only}
    urls = {name: f"http://localhost:{free_port()}/mcp" for name in tools}
    env = local_scalekit_factory(extra_args=tuple(a for url in urls.values() for a in ("--mcp-resource", url)))
    servers = [sdk_server(env, urls[name], add) for name, add in tools.items()]
    yield env, urls
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def sdk_default_server(sdk_servers):
    env, urls = sdk_servers
    return env, urls["whoami"]


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


SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TRUST = ("REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")


@pytest.mark.slow
def test_env_file_gives_the_trust_and_wins_over_exported_ca_variables(sdk_default_server, workdir):
    """As the other scripts: --env-file (a file written by local_scalekit.py --env-file) applies its CA
    variables, even where the machine exports its own; without it the local environment is not trusted."""
    env, url = sdk_default_server
    machine = base_env(**{name: SYSTEM_BUNDLE for name in TRUST})
    app = workdir / "my-app"
    app.mkdir()
    (app / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.env_vars().items()))
    runs = run_many({"named": ("test_mcp_server.py", (url, "--json", "--env-file", str(app / ".env")), machine, workdir),
                     "default": ("test_mcp_server.py", (url, "--json"), machine, app),
                     "none": ("test_mcp_server.py", (url, "--json", "--timeout", "5"), machine, workdir),
                     "missing": ("test_mcp_server.py", (url, "--env-file", "missing.env"), machine, workdir)})
    for key in ("named", "default"):
        checks = {c["name"]: c for c in result(runs, key).doc["checks"]}
        assert checks["env file"]["status"] == "pass", checks["env file"]
        assert checks["authorization server"]["status"] == "pass", json.dumps(checks["authorization server"])
        assert checks["valid token"]["status"] == "pass", json.dumps(checks["valid token"])
    untrusted = {c["name"]: c for c in result(runs, "none").doc["checks"]}["authorization server"]
    assert untrusted["status"] == "fail" and "is not trusted" in untrusted["message"], untrusted
    missing = result(runs, "missing")
    assert missing.code == 2 and "missing.env does not exist" in missing.stderr, missing


@pytest.mark.slow
def test_without_tool_it_picks_a_read_only_tool_that_needs_no_arguments(sdk_servers, workdir):
    env, urls = sdk_servers
    run = run_script("test_mcp_server.py", urls["notes"], "--json", env=base_env(**env.env_vars()), cwd=workdir,
                     timeout=120)
    checks = {c["name"]: c for c in run.doc["checks"]}
    assert checks["tool"]["status"] == "pass" and checks["tool"]["data"] == {"tool": "list_notes", "picked": True}
    for name in ("mcp client", "valid token", "session of another user"):
        assert checks[name]["status"] == "pass", json.dumps(checks[name])
    assert "list_notes" in checks["valid token"]["message"]


@pytest.mark.slow
def test_without_a_callable_tool_it_says_to_pass_tool(sdk_servers, workdir):
    env, urls = sdk_servers
    run = run_script("test_mcp_server.py", urls["arguments"], "--json", env=base_env(**env.env_vars()), cwd=workdir,
                     timeout=120)
    checks = {c["name"]: c for c in run.doc["checks"]}
    assert checks["tool"]["status"] == "fail" and "pass --tool NAME" in checks["tool"]["message"], checks["tool"]
    assert "add_note" in checks["tool"]["message"]
    for name in ("mcp client", "valid token", "session of another user"):
        assert checks[name]["status"] == "skip" and "--tool" in checks[name]["message"], json.dumps(checks[name])
    assert checks["forged tokens"]["status"] == "pass", "the checks that call no tool still run"
    with_tool = run_script("test_mcp_server.py", urls["arguments"], "--json", "--tool", "add_note", "--tool-args",
                           '{"title": "x"}', env=base_env(**env.env_vars()), cwd=workdir, timeout=120)
    checks = {c["name"]: c for c in with_tool.doc["checks"]}
    assert checks["tool"]["data"] == {"tool": "add_note", "picked": False}
    assert checks["valid token"]["status"] == "pass", json.dumps(checks["valid token"])


@pytest.mark.slow
def test_a_failing_mcp_client_does_not_stop_the_other_checks(sdk_default_server, workdir):
    """validation-scripts.md: a failing check does not stop the others (except discovery)."""
    env, url = sdk_default_server
    run = run_script("test_mcp_server.py", url, "--json", "--login", "alice@acme.test:not-her-password",
                     env=base_env(**env.env_vars()), cwd=workdir, timeout=120)
    checks = {c["name"]: c for c in run.doc["checks"]}
    assert checks["mcp client"]["status"] == "fail" and "refused alice@acme.test" in checks["mcp client"]["message"]
    names = list(checks)
    assert names[names.index("mcp client") + 1:] == ["valid token", "forged tokens", "scope shortfall", "step-up",
                                                     "query-string token", "session without token",
                                                     "session of another user"], names
    for name in ("valid token", "forged tokens", "query-string token", "session of another user"):
        assert checks[name]["status"] == "pass", json.dumps(checks[name])
    assert run.code == 5 and run.doc["error"]["check"] == "401 challenge"  # the first failure's code
    assert_no_leaks(run, "not-her-password")
