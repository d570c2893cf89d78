"""The local environment under bad input and attack, probed from outside as an attacker would:
deeply nested JSON, malformed URLs, hostile client metadata documents, connections that never
finish their headers, cross-site requests to the admin routes, replayed authorization codes, and
the permissions of the state file. The answer is always a clear 4xx (never a 500, never a hang)."""
from __future__ import annotations

import json
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from urllib.parse import quote

from pathlib import Path

import httpx
import pytest

from .helpers import (QuietHandler, REDIRECT, authorize_params, env_client, exchange, headless_code, loopback_base,
                      pkce_pair, query_of, serve_on_loopback)

CLI = Path(__file__).resolve().parents[2] / "scripts" / "local_scalekit.py"
RESOURCE = "res_70000000000004001"          # the default seed's MCP server (DCR and metadata documents on)
RESOURCE_URL = "http://localhost:8000/mcp"
DIRECTORY = "dir_70000000000004001"
BOB = "bob@acme.test"
NESTED_ARRAY = "[" * 5000 + "]" * 5000                     # 10 KB
NESTED_OBJECT = '{"a":' * 2000 + "1" + "}" * 2000          # 12 KB
BROKEN_URLS = [
    "http://[::1/callback",                 # broken IPv6 host
    "https://exa\udcffmple.com/callback",   # a host that is not valid Unicode
    "https://bad\u2000host.example/callback",
    "https://app.example:99999/callback",   # port out of range
    "http://127.0.0.1:99999/callback",
]


def client_token(http: httpx.Client, env) -> str:
    resp = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": env.client_id,
                                           "client_secret": env.client_secret})
    return resp.json()["access_token"]


# ---- deeply nested JSON ---------------------------------------------------------------------------
def json_routes(http, env) -> list[tuple[str, str, dict]]:
    """(method, path, headers) of every route that parses a JSON body."""
    bearer = {"Authorization": f"Bearer {client_token(http, env)}"}
    return [
        ("POST", f"/resources/{RESOURCE}/register", {}),
        ("POST", "/api/v1/connections/conn_70000000000009999/auth-requests/lri_1/user", bearer),
        ("POST", "/_local/webhooks", {}),
        ("POST", "/_local/events", {}),
        ("POST", "/_local/faults", {}),
        ("POST", "/_local/users/password", {}),
        ("POST", f"/_local/directories/{DIRECTORY}/users", {}),
        ("PATCH", f"/_local/directories/{DIRECTORY}/users/diruser_70000000000006001", {}),
        ("POST", f"/_local/directories/{DIRECTORY}/groups", {}),
        ("PATCH", f"/_local/directories/{DIRECTORY}/groups/dirgroup_70000000000005001", {}),
    ]


@pytest.mark.parametrize("body", [NESTED_ARRAY, NESTED_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_gets_a_400_on_every_json_route(main_env, http, body):
    answers = {}
    for method, path, headers in json_routes(http, main_env):
        resp = http.request(method, path, content=body, headers={"Content-Type": "application/json", **headers})
        answers[f"{method} {path}"] = resp.status_code
    assert all(400 <= code < 500 for code in answers.values()), answers
    assert http.get("/_local/health").status_code == 200


# ---- malformed URLs -------------------------------------------------------------------------------
@pytest.mark.parametrize("uri", BROKEN_URLS)
def test_registration_refuses_malformed_redirect_uris(http, uri):
    resp = http.post(f"/resources/{RESOURCE}/register", content=json.dumps({"redirect_uris": [uri]}),
                     headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize("client_id", [u.replace("/callback", "/client.json") for u in BROKEN_URLS])
def test_authorize_refuses_malformed_url_client_ids(http, client_id):
    # surrogatepass: a host that is not valid Unicode arrives as bytes that are not valid UTF-8
    query = f"response_type=code&state=s&redirect_uri={quote(REDIRECT, safe='')}" \
            f"&client_id={quote(client_id, safe='', errors='surrogatepass')}"
    resp = http.get(f"/oauth/authorize?{query}")
    assert resp.status_code == 400, resp.text[:300]
    assert "invalid_client" in resp.text


class MetadataDocuments(QuietHandler):
    """Serves /doc/<n>: a client ID metadata document whose redirect URI is BROKEN_URLS[n]."""

    def do_GET(self):
        index = int(self.path.rsplit("/", 1)[1])
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        doc = {"client_id": f"{base}{self.path}", "client_name": "broken", "redirect_uris": [BROKEN_URLS[index]],
               "token_endpoint_auth_method": "none"}
        self.send_body(json.dumps(doc).encode(), "application/json")


def test_metadata_documents_with_malformed_redirect_uris_are_refused(http):
    server = serve_on_loopback(MetadataDocuments)
    try:
        for index, uri in enumerate(BROKEN_URLS):
            client_id = f"{loopback_base(server)}/doc/{index}"
            _, challenge = pkce_pair()
            query = "&".join(f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in {
                "response_type": "code", "client_id": client_id, "redirect_uri": uri, "state": "s",
                "code_challenge": challenge, "code_challenge_method": "S256", "resource": RESOURCE_URL}.items())
            resp = http.get(f"/oauth/authorize?{query}")
            assert resp.status_code == 400, (uri, resp.text[:300])
            assert "could not be used" in resp.text, resp.text[:300]
    finally:
        server.shutdown()


def test_a_malformed_host_header_is_not_a_server_error(main_env):
    with socket.create_connection(("127.0.0.1", main_env.port), timeout=10) as raw:
        context = ssl.create_default_context(cafile=main_env.ca_bundle)
        context.set_alpn_protocols(["http/1.1"])
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    assert answer.split(b" ", 2)[1] != b"500", answer[:300]


# ---- hostile client metadata documents: bounded in time and size ---------------------------------------
class Hostile(QuietHandler):
    """/drip: a document that arrives one byte every 0.2 s (15 s in all); /huge: a 30 MB document."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        doc = json.dumps({"client_id": f"{base}{self.path}", "redirect_uris": ["http://127.0.0.1:9/cb"],
                          "token_endpoint_auth_method": "none", "padding": ""}).encode()
        if self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "75")
            self.end_headers()
            try:
                for byte in doc[:75]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            return
        size = 30 * 1024 * 1024
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = 0
        try:
            chunk = b" " * 65536
            while sent < size:
                self.wfile.write(chunk)
                sent += len(chunk)
            self.server.outcome["huge"] = "sent in full"
        except OSError:
            self.server.outcome["huge"] = f"connection closed after {sent} bytes"


@pytest.fixture
def hostile():
    server = serve_on_loopback(Hostile, daemon_threads=True)
    server.outcome = {}
    yield server
    server.shutdown()


def cimd_authorize(http, client_id: str) -> httpx.Response:
    _, challenge = pkce_pair()
    return http.get("/oauth/authorize", params={
        "response_type": "code", "client_id": client_id, "redirect_uri": "http://127.0.0.1:9/cb", "state": "s",
        "code_challenge": challenge, "code_challenge_method": "S256", "resource": RESOURCE_URL}, timeout=30)


def test_a_dripping_metadata_document_is_abandoned_at_the_deadline(http, hostile):
    started = time.monotonic()
    resp = cimd_authorize(http, f"{loopback_base(hostile)}/drip")
    elapsed = time.monotonic() - started
    assert resp.status_code == 400 and "could not be used" in resp.text, resp.text[:300]
    assert elapsed < 8, f"/oauth/authorize took {elapsed:.1f} s (the fetch deadline is 5 s in total)"


def test_a_huge_metadata_document_is_not_read_past_the_limit(http, hostile):
    resp = cimd_authorize(http, f"{loopback_base(hostile)}/huge")
    assert resp.status_code == 400 and "larger than" in resp.text, resp.text[:300]
    deadline = time.monotonic() + 10
    while "huge" not in hostile.outcome and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hostile.outcome.get("huge", "").startswith("connection closed"), hostile.outcome


# ---- connections that never finish their request headers ------------------------------------------
@pytest.fixture
def quick_deadline_env(tmp_path, monkeypatch):
    """An in-process instance whose header deadline is 1 s (10 s in normal use)."""
    from scalekit_local import LocalScalekit
    from scalekit_local.listener import header_deadline

    monkeypatch.setattr(header_deadline, "HEADER_TIMEOUT", 1.0)
    env = LocalScalekit(data_dir=tmp_path / "data").start()
    yield env
    env.stop()


def closed_within(sock, seconds: float, drip: bytes = b"") -> bool:
    """True when the server closes `sock` within `seconds` while we send `drip` one byte at a time."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        if sent < len(drip):
            try:
                sock.sendall(drip[sent:sent + 1])
            except OSError:
                return True
            sent += 1
        try:
            if sock.recv(65536) == b"":
                return True
        except (TimeoutError, socket.timeout):
            continue
        except OSError:
            return True
    return False


def test_connections_that_never_finish_their_headers_are_closed(quick_deadline_env):
    env = quick_deadline_env
    context = ssl.create_default_context(cafile=env.ca_bundle)
    context.set_alpn_protocols(["http/1.1"])
    silent = context.wrap_socket(socket.create_connection(("127.0.0.1", env.port)), server_hostname="127.0.0.1")
    dripping = context.wrap_socket(socket.create_connection(("127.0.0.1", env.port)), server_hostname="127.0.0.1")
    no_alpn = ssl.create_default_context(cafile=env.ca_bundle).wrap_socket(
        socket.create_connection(("127.0.0.1", env.port)), server_hostname="127.0.0.1")
    results = {}
    threads = [threading.Thread(target=lambda n=n, s=s, d=d: results.__setitem__(n, closed_within(s, 6, d)))
               for n, s, d in (("silent", silent, b""), ("no ALPN, silent", no_alpn, b""),
                               ("dripping", dripping, b"GET /_local/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"silent": True, "no ALPN, silent": True, "dripping": True}
    with env_client(env) as client:  # well-behaved clients are unaffected
        assert client.get("/_local/health").status_code == 200


def test_pipelined_and_kept_alive_requests_keep_their_own_header_deadline(quick_deadline_env):
    env = quick_deadline_env
    context = ssl.create_default_context(cafile=env.ca_bundle)
    context.set_alpn_protocols(["http/1.1"])
    request = b"GET /_local/health HTTP/1.1\r\nHost: x\r\n\r\n"
    with context.wrap_socket(socket.create_connection(("127.0.0.1", env.port)), server_hostname="127.0.0.1") as sock:
        # Idle between requests longer than the deadline: the keep-alive timeout applies, not the deadline.
        sock.sendall(request)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        time.sleep(1.5)
        # Two complete requests and the start of a third in one write: both are answered, then the
        # third, which never finishes its headers, is closed.
        sock.sendall(request * 2 + b"GET /_local/health HTTP/1.1\r\nHost: x\r\n")
        answers = b""
        sock.settimeout(6)
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, socket.timeout):
                pytest.fail(f"the unfinished pipelined request was not closed; got {answers!r}")
            if not chunk:
                break
            answers += chunk
    assert answers.count(b"HTTP/1.1 200") == 2, answers


# ---- admin routes refuse cross-site requests ------------------------------------------------------
def test_admin_routes_refuse_cross_site_requests(main_env, http):
    evil = {"Origin": "https://evil.example"}
    attacks = [
        ("POST", "/_local/users/password", json.dumps({"email": BOB, "password": "owned-by-evil"})),
        ("POST", "/_local/webhooks", json.dumps({"url": "https://evil.example/hook"})),
        ("POST", "/_local/faults", json.dumps({"target": "POST /oauth/token", "status": 500})),
        ("POST", "/_local/events", json.dumps({"type": "user.login", "data": {}})),
        ("POST", f"/_local/directories/{DIRECTORY}/users", json.dumps({"email": "mallory@acme.test"})),
        ("POST", "/_local/token-matrix", json.dumps({"audience": ["https://evil.example"]})),
        ("POST", "/_local/idp-initiated-login", json.dumps({"connection_id": "conn_70000000000002001"})),
        ("DELETE", "/_local/faults", ""),
    ]
    for method, path, body in attacks:
        as_form = http.request(method, path, content=body, headers={**evil, "Content-Type": "text/plain"})
        assert as_form.status_code in (400, 403), (path, as_form.status_code, as_form.text)
        if method == "POST":  # a simple request a page could send without a preflight
            same_origin_text = http.request(method, path, content=body, headers={"Content-Type": "text/plain"})
            assert same_origin_text.status_code == 400, (path, same_origin_text.status_code)
            assert "application/json" in same_origin_text.json()["error_description"]
        as_json = http.request(method, path, content=body, headers={**evil, "Content-Type": "application/json"})
        assert as_json.status_code == 403 and as_json.json()["error"] == "access_denied", (path, as_json.status_code)
        fetch_meta = http.request(method, path, content=body, headers={"Sec-Fetch-Site": "cross-site",
                                                                       "Content-Type": "application/json"})
        assert fetch_meta.status_code == 403, (path, fetch_meta.status_code)
    # Nothing changed: no webhook, no fault, bob still signs in with his own password.
    assert http.get("/_local/webhooks").json()["endpoints"] == []
    assert http.get("/_local/faults").json()["faults"] == []
    resp = http.get("/oauth/authorize", params=authorize_params(main_env.client_id, prompt="login"))
    request_id = query_of(resp.headers["location"])["r"]
    login = http.post("/ui/login", data={"r": request_id, "email": BOB, "password": "bob-password"})
    assert login.status_code == 302 and login.headers["location"].startswith(REDIRECT)


def test_admin_routes_still_serve_local_json_requests(http):
    resp = http.post("/_local/faults", json={"target": "GET /userinfo", "status": 503, "count": 1})
    assert resp.status_code == 201, resp.text
    assert http.delete("/_local/faults").status_code == 200


# ---- replayed authorization codes -----------------------------------------------------------------
@pytest.mark.parametrize("scope", ["openid profile email offline_access", "openid email"])
def test_tokens_from_a_replayed_code_are_revoked(autologin, auto_http, scope):
    """RFC 6749 section 4.1.2: a code used twice revokes what its first exchange issued."""
    code = headless_code(auto_http, autologin.client_id, scope=scope)
    first = exchange(auto_http, autologin, code)
    assert first.status_code == 200, first.text
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert auto_http.get("/userinfo", headers=bearer).status_code == 200
    replay = exchange(auto_http, autologin, code)
    assert replay.json()["error"] == "invalid_grant"
    assert auto_http.get("/userinfo", headers=bearer).status_code == 401
    if "refresh_token" in first.json():
        refreshed = auto_http.post("/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"],
            "client_id": autologin.client_id, "client_secret": autologin.client_secret})
        assert refreshed.json()["error"] == "invalid_grant"


# ---- the state file --------------------------------------------------------------------------------
def test_the_state_file_is_readable_by_its_owner_only(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, str(CLI), "--port", "0", "--json", "--persist",
                             "--data-dir", str(data)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert json.loads(proc.stdout.readline())["url"]
        files = [p for p in data.iterdir() if p.name.startswith("state.sqlite3")]
        assert files, list(data.iterdir())
        modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
        assert all(int(mode, 8) & 0o077 == 0 for mode in modes.values()), modes
    finally:
        proc.terminate()
        proc.wait(10)


def test_forwarded_headers_from_clients_are_ignored(http):
    """The environment is reached directly (the TLS front hands connections to the HTTP server in the
    same process), so X-Forwarded-* headers come from the client and must not change what it sees."""
    plain = http.get("/.well-known/openid-configuration").json()["issuer"]
    spoofed = http.get("/.well-known/openid-configuration", headers={
        "X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.example"}).json()
    assert spoofed["issuer"] == plain and plain.startswith("https://127.0.0.1:")


def test_mcp_tokens_from_a_replayed_code_are_revoked(auto_http):
    """The same for an MCP client (the default seed's static client of the MCP server)."""
    import base64

    verifier, challenge = pkce_pair()
    resp = auto_http.get("/oauth/authorize", params={
        "response_type": "code", "client_id": "m2m_70000000000004101", "redirect_uri": "http://localhost:3000/mcp/callback",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256",
        "scope": "todo:read offline_access", "resource": RESOURCE_URL})
    code = query_of(resp.headers["location"])["code"]
    basic = base64.b64encode(b"m2m_70000000000004101:test_mcp_Qw7Er4Ty1Ui8Op5As2Df9Gh6Jk3Lz0Xc").decode()

    def exchange_mcp():
        return auto_http.post("/oauth/token", headers={"Authorization": f"Basic {basic}"}, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": "http://localhost:3000/mcp/callback",
            "code_verifier": verifier})

    first = exchange_mcp().json()
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert auto_http.get("/userinfo", headers=bearer).status_code == 200
    assert exchange_mcp().json()["error"] == "invalid_grant"
    assert auto_http.get("/userinfo", headers=bearer).status_code == 401
    refreshed = auto_http.post("/oauth/token", headers={"Authorization": f"Basic {basic}"}, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refreshed.json()["error"] == "invalid_grant"
