"""The black-box MCP suite: every template of templates/mcp-*, started from its template.json, in
both issuer forms of the local Scalekit environment (`--mcp-token-issuer environment|resource`).

What runs against each (template, issuer form), on one shared server:
- scripts/test_mcp_server.py (the MCP path's "Done when"): challenge, metadata at the header's URL,
  the path-suffixed and the root well-known URLs, issuer match, the token matrix (valid tokens in
  both issuer forms, ten single-fault tokens -> 401, scope shortfall -> 403 insufficient_scope),
  step-up on the write tool, query-string token, session id without a token or with another user's
  token, and the MCP Python SDK client (DCR, PKCE with resource, a tool call, a step-up);
and, per template, what the checker cannot see from outside:
- the keys: /keys fetched once per process, cached, re-fetched on an unknown kid at most every few
  seconds (counted by the local environment's /_local/stats);
- one audit line per tool call (subject, client, scopes, tool, result), read from the server's log;
- no token passthrough: the write tool calls a downstream API (a recording stub here) and the MCP
  token never reaches it;
- the MCP Python SDK client refuses authorization-server metadata that advertises a wrong issuer.

The manifest keys this suite reads are described in tests/template_suites/README.md ("MCP suite").
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jsonschema
import pytest

from . import launcher

pytestmark = pytest.mark.slow

REPO = launcher.REPO_ROOT
CHECKER = REPO / "scripts" / "test_mcp_server.py"
SCHEMA = json.loads((REPO / "scripts" / "schemas" / "report.schema.json").read_text(encoding="utf-8"))
TEMPLATES = launcher.names("mcp")
ISSUERS = ("environment", "resource")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# The checks of test_mcp_server.py that must pass (not skip) against the local environment.
MUST_PASS = ("mcp endpoint", "401 challenge", "resource metadata", "well-known metadata", "authorization server",
             "scalekit environment", "token matrix", "mcp client", "valid token", "forged tokens",
             "scope shortfall", "step-up", "query-string token", "session without token", "session of another user")
SUITE_CLIENT = "m2m_70000000000009901"  # the MCP client of the suite's matrix tokens (one client, several scopes)
EXPIRING_TTL = 60  # seconds: the shortest life the token matrix gives a token (see accept_expiring_token)
KEYS_COOLDOWN = 5.0  # seconds: a template re-fetches the keys on an unknown kid at most this often


# ---- a recording stand-in for the downstream API the write tool calls --------------------------------
class Downstream:
    def __init__(self):
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                outer.received.append({"path": self.path, "headers": dict(self.headers.items()),
                                       "body": self.rfile.read(length).decode(errors="replace")})
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests_to(self, path: str) -> list[dict]:
        return [r for r in self.received if r["path"] == path]


@pytest.fixture(scope="session")
def downstream():
    stub = Downstream()
    yield stub
    stub.server.shutdown()


# ---- one server per template and issuer form --------------------------------------------------------
@dataclass
class McpServer:
    running: launcher.RunningTemplate
    issuer: str
    downstream_path: str
    unknown_kids_sent: int = 0
    used: bool = False
    expiring: dict = field(default_factory=dict)  # see accept_expiring_token
    _matrix: dict = field(default_factory=dict)

    @property
    def mcp(self) -> dict:
        return self.running.manifest["mcp"]

    @property
    def url(self) -> str:
        return self.running.url + self.mcp["endpoint"]

    @property
    def env_url(self) -> str:
        return self.running.env["SCALEKIT_ENVIRONMENT_URL"]

    @property
    def resource_id(self) -> str:
        return self.running.env["SCALEKIT_RESOURCE_ID"]

    def env_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.env_url, verify=ssl.create_default_context(cafile=self.running.local.ca_bundle),
                            timeout=15)

    def matrix(self, scopes: tuple[str, ...] = ("todo:read",), client_id: str = SUITE_CLIENT) -> dict:
        """The local environment's token matrix for this server (cached per scope set and client)."""
        if (scopes, client_id) not in self._matrix:
            with self.env_client() as client:
                response = client.post("/_local/token-matrix", json={
                    "kind": "mcp", "audience": [self.resource_id, self.url], "scopes": list(scopes),
                    "required_scope": scopes[0], "issuer": self.issuer, "client_id": client_id})
            assert response.status_code == 200, response.text
            self._matrix[(scopes, client_id)] = response.json()
        return self._matrix[(scopes, client_id)]

    def accept_expiring_token(self) -> None:
        """Right after the start: a token that expires EXPIRING_TTL s later, used for a session and a tool
        call (so the server verified it, and a template that keeps verified tokens keeps this one).
        test_an_accepted_token_is_refused_once_expired uses it again at the end of the module, when it
        has expired: the servers start before the first test, so the waiting is shared with the suite."""
        with self.env_client() as client:
            response = client.post("/_local/token-matrix", json={
                "kind": "mcp", "audience": [self.resource_id, self.url], "scopes": ["todo:read"],
                "issuer": self.issuer, "ttl": EXPIRING_TTL})
        assert response.status_code == 200, response.text
        token, claims = response.json()["valid"]["token"], response.json()["valid"]["claims"]
        opened = self.initialize(token)
        session = opened.headers.get("mcp-session-id")
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, token, session)
        called = self.call(token, session, self.mcp["tool"], {})
        self.expiring = {"token": token, "exp": claims["exp"], "session": session,
                         "accepted": [opened.status_code, called.status_code]}

    def token(self, scopes: tuple[str, ...] = ("todo:read",), client_id: str = SUITE_CLIENT) -> str:
        return self.matrix(scopes, client_id)["valid"]["token"]

    def variant(self, name: str) -> str:
        return next(v["token"] for v in self.matrix()["variants"] if v["name"] == name)

    def keys_fetched(self) -> int:
        return self.running.local.stats().get("keys", 0)

    # -- raw MCP over HTTP -----------------------------------------------------------------------
    def post(self, body: dict, token: str | None, session: str | None = None) -> httpx.Response:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if session:
            headers.update({"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
        return httpx.post(self.url, json=body, headers=headers, timeout=15)

    def initialize(self, token: str | None) -> httpx.Response:
        return self.post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "pytest", "version": "1"}}},
            token)

    def session(self, token: str) -> str | None:
        opened = self.initialize(token)
        assert opened.status_code == 200, opened.text
        session = opened.headers.get("mcp-session-id")
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, token, session)
        return session

    def call(self, token: str, session: str | None, tool: str, args: dict) -> httpx.Response:
        return self.post({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                          "params": {"name": tool, "arguments": args}}, token, session)


def rpc_result(response: httpx.Response) -> dict:
    """The JSON-RPC result of an answer (JSON or SSE)."""
    from scalekit_checks.mcp_server import rpc_message

    message = rpc_message(response)
    assert message and "result" in message, f"HTTP {response.status_code}: {response.text[:500]}"
    return message["result"]


@pytest.fixture(scope="session")
def mcp_server(template_server, downstream, request, tmp_path_factory):
    servers: dict[tuple[str, str], McpServer] = {}
    lock = threading.Lock()

    def get(name: str, issuer: str = "environment") -> McpServer:
        with lock:
            known = servers.get((name, issuer))
        if known is None or known.running.proc.poll() is not None:
            manifest = launcher.load(launcher.TEMPLATES_DIR / name).manifest["mcp"]
            path = f"/todos/{name}/{issuer}"
            extra = {manifest["downstream_env"]: downstream.url + path} if manifest.get("downstream_env") else {}
            running = template_server(name, local_args=("--mcp-token-issuer", issuer), extra_env=extra)
            server = McpServer(running, issuer, path)
            if issuer == "environment":
                server.accept_expiring_token()
            with lock:
                servers[(name, issuer)] = server
        return servers[(name, issuer)]

    # The servers the selected tests need start two at a time, after the builds (one at a time).
    params = [getattr(item, "callspec", None) for item in request.session.items if item.module.__name__ == __name__]
    wanted = sorted({(p.params["name"], p.params.get("issuer", "environment")) for p in params
                     if p is not None and "name" in p.params})
    log_dir = tmp_path_factory.mktemp("mcp-builds")
    for name in sorted({n for n, _ in wanted}):
        launcher.build(launcher.load(launcher.TEMPLATES_DIR / name), log_dir)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(get, *pair) for pair in wanted]:
            future.exception()  # a server that did not start fails the tests that use it, with its log
    return get


def checker_args(server: McpServer, env_file: Path, name_the_tool: bool = True) -> list[str]:
    """The MCP pages' "Done when" command for this template; without `name_the_tool` the checker picks it."""
    mcp = server.mcp
    args = [sys.executable, str(CHECKER), server.url, "--json", "--env-file", str(env_file)]
    if name_the_tool:
        args += ["--tool", mcp["tool"]]
    if mcp.get("write_tool"):
        args += ["--write-tool", mcp["write_tool"], "--write-scope", mcp["write_scope"],
                 "--write-args", json.dumps(mcp.get("write_args", {}))]
    custom = mcp.get("custom_auth")
    if custom:
        args += ["--login", f"{custom['email']}:{server.running.env[custom['password_env']]}"]
    return args


def redacted(text: str) -> str:
    """`text` with every JWT cut to its first characters, for failure messages: tests print no tokens."""
    return JWT.sub(lambda m: m.group(0)[:8] + "...[token redacted]", text)


def audit_lines(log: str) -> list[dict]:
    found = []
    for line in log.splitlines():
        start = line.find("{")
        if start < 0 or '"audit"' not in line:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("audit") == "tool_call":
            found.append(entry)
    return found


# ---- the keys (first in the file, so each server is still fresh when it runs) -----------------------
@pytest.mark.parametrize("name", TEMPLATES)
def test_keys_fetched_once_cached_and_refetched_on_unknown_kid(mcp_server, name):
    server = mcp_server(name)
    fresh = not server.used
    server.used = True
    valid, unknown = server.token(), server.variant("unknown_kid")
    assert server.initialize(valid).status_code == 200
    fetched = server.keys_fetched()
    assert fetched >= 1, "the server accepted a token without fetching /keys"
    if fresh:
        assert fetched == 1, f"/keys fetched {fetched} times for the first token: fetch once, then cache"
    for _ in range(5):
        assert server.initialize(valid).status_code == 200
    assert server.keys_fetched() == fetched, "/keys fetched again for a known kid: cache the key set"

    # A burst of unknown kids may cause one re-fetch at most: a forged kid must not become a stream of fetches.
    burst = [server.initialize(unknown).status_code for _ in range(5)]
    server.unknown_kids_sent += 5
    assert burst == [401] * 5
    assert server.keys_fetched() - fetched <= 1, "each unknown kid re-fetched /keys: limit re-fetches"
    deadline = time.monotonic() + KEYS_COOLDOWN + 3
    while server.keys_fetched() == fetched and time.monotonic() < deadline:
        time.sleep(0.5)
        assert server.initialize(unknown).status_code == 401
        server.unknown_kids_sent += 1
    refetched = server.keys_fetched()
    assert refetched > fetched, f"an unknown kid never re-fetched /keys within {KEYS_COOLDOWN + 3:g} s (key rotation)"
    assert server.initialize(valid).status_code == 200
    assert server.keys_fetched() == refetched


# ---- the checker -------------------------------------------------------------------------------------
@pytest.mark.parametrize("issuer", ISSUERS)
@pytest.mark.parametrize("name", TEMPLATES)
def test_checker_passes(mcp_server, name, issuer, tmp_path):
    """As the pages print it: the app's .env named with --env-file (the process environment has no
    Scalekit settings); in the resource issuer form without --tool, so the checker picks the tool."""
    server = mcp_server(name, issuer)
    server.used = True
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in server.running.local.env_vars().items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALEKIT_")}
    name_the_tool = issuer == "environment"
    proc = subprocess.run(checker_args(server, env_file, name_the_tool), env=env, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL, cwd=REPO)
    server.unknown_kids_sent += 1
    report = f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n--- server log\n{server.running.log_text()[-3000:]}"
    assert "Traceback" not in proc.stdout + proc.stderr, report
    assert not JWT.search(proc.stdout + proc.stderr), "a token was printed\n" + report
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    statuses = {c["name"]: c["status"] for c in doc["checks"]}
    assert proc.returncode == 0 and doc["ok"], report
    tool = next(c for c in doc["checks"] if c["name"] == "tool")["data"]
    assert tool == {"tool": server.mcp["tool"], "picked": not name_the_tool}, tool
    not_passed = {n: statuses.get(n) for n in MUST_PASS if statuses.get(n) != "pass"}
    assert not not_passed, f"{not_passed}\n{report}"
    well_known = next(c for c in doc["checks"] if c["name"] == "well-known metadata")
    assert well_known["data"]["root_served"] is True, "serve the metadata at /.well-known/oauth-protected-resource too"
    client = next(c for c in doc["checks"] if c["name"] == "mcp client")["data"]
    assert client["claims"]["iss"] == (server.env_url if issuer == "environment"
                                       else f"{server.env_url}/resources/{server.resource_id}")
    assert server.resource_id in client["claims"]["aud"]
    custom = server.mcp.get("custom_auth")
    if custom:  # the client's login went through the app's own login page
        assert server.running.url + custom["login"] in client["login_pages"], client["login_pages"]


# ---- what the checker cannot see --------------------------------------------------------------------
@pytest.mark.parametrize("name", TEMPLATES)
def test_one_audit_line_per_tool_call(mcp_server, name):
    server = mcp_server(name)
    server.used = True
    mcp = server.mcp
    # Fresh tokens of a client of this test alone: its audit lines are told apart from the lines of
    # earlier tests that a busy server may still be writing, whatever their timing.
    client_id = f"m2m_{secrets.randbelow(10**17):017d}"
    read, write = server.token(client_id=client_id), server.token(("todo:read", mcp["write_scope"]), client_id)
    claims = server.matrix(client_id=client_id)["valid"]["claims"]
    assert claims["client_id"] == client_id

    def mine() -> list[dict]:
        return [e for e in audit_lines(server.running.log_text()) if e.get("client_id") == client_id]

    session = server.session(read)
    for _ in range(2):
        assert not rpc_result(server.call(read, session, mcp["tool"], {})).get("isError")
    denied = server.call(read, session, mcp["write_tool"], mcp.get("write_args", {}))
    assert denied.status_code == 403, denied.text
    session = server.session(write)
    assert not rpc_result(server.call(write, session, mcp["write_tool"], mcp.get("write_args", {}))).get("isError")
    assert rpc_result(server.call(write, session, mcp["write_tool"], {"no_such_argument": 1})).get("isError")
    expected = [(mcp["tool"], "ok", "todo:read"), (mcp["tool"], "ok", "todo:read"),
                (mcp["write_tool"], "denied", "todo:read"), (mcp["write_tool"], "ok", f"todo:read {mcp['write_scope']}"),
                (mcp["write_tool"], "error", f"todo:read {mcp['write_scope']}")]
    deadline = time.monotonic() + 20  # log lines may trail the answers on a loaded machine
    while len(mine()) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)  # and a line too many must have had the chance to show up
    lines = mine()
    assert [(e.get("tool"), e.get("result"), e.get("scope")) for e in lines] == expected, lines
    for entry in lines:
        assert entry.get("sub") == claims["sub"], entry


@pytest.mark.parametrize("name", TEMPLATES)
def test_tokens_never_reach_the_downstream_api(mcp_server, downstream, name):
    server = mcp_server(name)
    server.used = True
    mcp = server.mcp
    assert mcp.get("downstream_env"), "name the variable of the downstream API URL in template.json mcp.downstream_env"
    token = server.token(("todo:read", mcp["write_scope"]))
    before = len(downstream.requests_to(server.downstream_path))
    session = server.session(token)
    assert not rpc_result(server.call(token, session, mcp["write_tool"], mcp.get("write_args", {}))).get("isError")
    sent = downstream.requests_to(server.downstream_path)[before:]
    assert sent, f"{mcp['write_tool']} did not call the downstream API at ${mcp['downstream_env']}"
    for request in sent:
        seen = json.dumps(request)
        assert token not in seen, ("the MCP access token was passed to the downstream API: "
                                   f"{redacted(json.dumps(request['headers']))}")
        for candidate in JWT.findall(seen):
            from scalekit_checks.mcp_server import decode_claims

            aud = decode_claims(candidate).get("aud") or []
            assert server.resource_id not in aud, "a token issued for the MCP server reached the downstream API"


@pytest.mark.parametrize("name", TEMPLATES)
def test_python_client_refuses_metadata_with_a_wrong_issuer(mcp_server, name):
    """Negative control for the client side: strict clients (the MCP Python SDK) compare the
    metadata's issuer with the authorization_servers entry and must stop on a mismatch."""
    from scalekit_checks.mcp_server import Options, client_flow

    server = mcp_server(name)
    server.used = True
    res = server.resource_id
    discovery = (f"/.well-known/oauth-authorization-server/resources/{res}", f"/.well-known/openid-configuration/resources/{res}",
                 f"/resources/{res}/.well-known/oauth-authorization-server", f"/resources/{res}/.well-known/openid-configuration")
    with server.env_client() as client:
        faults = []
        for path in discovery:  # every URL a client may discover the metadata at
            added = client.post("/_local/faults", json={"spec": f"GET {path}=issuer:https://wrong-issuer.example.test"})
            assert added.status_code == 201, added.text
            faults.append(added.json()["id"])
        try:
            verify = ssl.create_default_context(cafile=server.running.local.ca_bundle)
            options = Options(url=server.url, tool=server.mcp["tool"], timeout=15, login_wait=15)
            custom = server.mcp.get("custom_auth")
            if custom:
                options.login = (custom["email"], server.running.env[custom["password_env"]])
            with pytest.raises(Exception) as refused:
                asyncio.run(asyncio.wait_for(client_flow(options, local=True, verify=verify), 60))
        finally:
            for fault in faults:
                client.delete(f"/_local/faults/{fault}")
    text = repr(refused.value) + " ".join(repr(e) for e in getattr(refused.value, "exceptions", []))
    assert "issuer mismatch" in text.lower(), text


# ---- custom auth: a real browser through the app's own login page --------------------------------------
CUSTOM_AUTH = [n for n in TEMPLATES if launcher.load(launcher.TEMPLATES_DIR / n).manifest["mcp"].get("custom_auth")]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def chromium_for(env_url: str):
    """Headless Chromium that trusts exactly this local environment's certificate."""
    import base64
    import hashlib
    import tempfile
    from urllib.parse import urlsplit

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    parts = urlsplit(env_url)
    pem = ssl.get_server_certificate((parts.hostname, parts.port))
    spki = x509.load_pem_x509_certificate(pem.encode()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tempfile.mkdtemp(prefix='skl-chromium-')}",
                "--ignore-certificate-errors-spki-list=" + base64.b64encode(hashlib.sha256(spki).digest()).decode()):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    return driver


@pytest.mark.browser
@pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                    reason="needs Debian's chromium and chromium-driver (./run.sh setup installs them)")
@pytest.mark.parametrize("name", CUSTOM_AUTH)
def test_custom_auth_login_in_a_real_browser(mcp_server, name):
    """The MCP Python SDK client, whose browser step is headless Chromium: Scalekit sends it to the
    app's own login page, the user signs in there, the app bridges the user to Scalekit, the user
    allows access on Scalekit's consent page, and the client gets its code and calls a tool."""
    from scalekit_checks.mcp_server import Options, client_flow
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    server = mcp_server(name)
    custom = server.mcp["custom_auth"]
    password = server.running.env[custom["password_env"]]
    driver = chromium_for(server.env_url)
    seen: list[str] = []

    def sign_in(url: str, redirect_uri: str) -> str:
        wait = WebDriverWait(driver, 15)
        driver.get(url)
        wait.until(lambda d: d.current_url.startswith(server.running.url + custom["login"]))
        seen.append(driver.current_url.split("?")[0])
        driver.find_element(By.CSS_SELECTOR, "input[type=email], input[name=email]").send_keys(custom["email"])
        driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(password)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]").click()
        wait.until(lambda d: d.current_url.startswith(redirect_uri)
                   or ec.presence_of_element_located((By.ID, "consent-approve"))(d))
        if not driver.current_url.startswith(redirect_uri):
            seen.append(driver.current_url.split("?")[0])
            driver.find_element(By.ID, "consent-approve").click()
            wait.until(lambda d: d.current_url.startswith(redirect_uri))
        return driver.current_url

    async def browser_step(url: str, redirect_uri: str) -> str:
        return await asyncio.to_thread(sign_in, url, redirect_uri)

    try:
        verify = ssl.create_default_context(cafile=server.running.local.ca_bundle)
        result = asyncio.run(asyncio.wait_for(client_flow(
            Options(url=server.url, tool=server.mcp["tool"], timeout=20, login_wait=60), local=True, verify=verify,
            browser_step=browser_step), 120))
    finally:
        driver.quit()
    assert seen[0] == server.running.url + custom["login"]
    assert any("/oauth/mcp/consent" in page for page in seen[1:]), seen
    assert result["claims"]["sub"] in result["tool_result"], result
    assert result["resource"] == server.url and result["code_challenge_method"] == "S256"


@pytest.mark.parametrize("name", TEMPLATES)
def test_its_configuration_passes_validate_env(mcp_server, name):
    """The variables the template runs with are what `validate_env.py --path mcp` accepts."""
    server = mcp_server(name)
    names = ("SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_RESOURCE_ID", "APP_URL", "SCALEKIT_CONNECTION_ID",
             "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALEKIT_") and k != "APP_URL"}
    env.update({k: server.running.env[k] for k in names if k in server.running.env})
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "validate_env.py"), "--path", "mcp", "--json"],
                          env=env, capture_output=True, text=True, timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    statuses = {c["name"]: c["status"] for c in json.loads(proc.stdout)["checks"]}
    assert statuses["SCALEKIT_RESOURCE_ID"] == statuses["APP_URL"] == "pass"
    if server.mcp.get("custom_auth"):
        assert statuses["SCALEKIT_CONNECTION_ID"] == "pass"


@pytest.mark.parametrize("name", CUSTOM_AUTH)
def test_custom_auth_login_refuses_a_wrong_password(mcp_server, name):
    """The app's own login must not complete (post a user to Scalekit) without a correct password."""
    from scalekit_checks.mcp_server import Options, check_failure_in, client_flow

    server = mcp_server(name)
    custom = server.mcp["custom_auth"]
    verify = ssl.create_default_context(cafile=server.running.local.ca_bundle)
    before = server.running.local.stats().get("bridge.user_details", 0)
    options = Options(url=server.url, tool=server.mcp["tool"], timeout=15, login_wait=15,
                      login=(custom["email"], server.running.env[custom["password_env"]] + "-wrong"))
    with pytest.raises(Exception) as raised:  # noqa: PT011 (the SDK wraps it in an exception group)
        asyncio.run(asyncio.wait_for(client_flow(options, local=True, verify=verify), 60))
    refused = check_failure_in(raised.value)
    assert refused is not None, raised.value
    assert refused.code == 3 and f"{server.running.url}{custom['login']}" in refused.message, refused.message
    assert server.running.local.stats().get("bridge.user_details", 0) == before, "a user was posted to Scalekit"


# ---- verified tokens kept by the templates (last in the file: the expiring token has expired by now) ----
@pytest.mark.parametrize("name", TEMPLATES)
def test_variants_refused_after_the_valid_token_was_accepted(mcp_server, name):
    """Templates keep the claims of tokens they verified (by the exact token string). The variants share
    the valid token's claims, forged_signature even its header and payload: none may ride on it."""
    server = mcp_server(name)
    server.used = True
    valid = server.token()
    assert [server.initialize(valid).status_code for _ in range(2)] == [200, 200]
    statuses = {v["name"]: server.initialize(v["token"]).status_code for v in server.matrix()["variants"]}
    server.unknown_kids_sent += 1
    assert "forged_signature" in statuses and "missing_scope" in statuses, sorted(statuses)
    assert statuses == {n: 403 if n == "missing_scope" else 401 for n in statuses}
    assert server.initialize(valid).status_code == 200


@pytest.mark.parametrize("name", TEMPLATES)
def test_an_accepted_token_is_refused_once_expired(mcp_server, name):
    """A kept token is good until its exp only. The token was accepted (so kept) when the server
    started; it is used again, on its session and on a new one, once it has expired."""
    server = mcp_server(name)
    server.used = True
    expiring = server.expiring
    assert expiring["accepted"] == [200, 200], f"a fresh {EXPIRING_TTL} s token was refused: {expiring['accepted']}"
    time.sleep(max(0.0, expiring["exp"] + 1 - time.time()))
    for refused in (server.call(expiring["token"], expiring["session"], server.mcp["tool"], {}),
                    server.initialize(expiring["token"])):
        assert refused.status_code == 401, f"an expired token was accepted: HTTP {refused.status_code} {refused.text[:300]}"
        assert "invalid_token" in refused.headers.get("www-authenticate", ""), refused.headers
    assert server.initialize(server.token()).status_code == 200, "the server refuses valid tokens too"
