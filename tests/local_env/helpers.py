"""Constants of the default seed and small HTTP helpers for the local environment's tests."""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

ALICE = "alice@acme.test"
ACME_ORG = "org_70000000000001001"
GLOBEX_ORG = "org_70000000000001002"
ACME_SAML = "conn_70000000000002001"
GLOBEX_OIDC = "conn_70000000000002002"
PASSWORD_CONN = "conn_70000000000000101"
M2M_ID = "m2morg_70000000000000002"
M2M_SECRET = "test_m2m_Vh3Lr8Qz5Tc1Wn6Kx9Bd2Mf4Jp7Sg0Ya"
REDIRECT = "http://localhost:3000/auth/callback"
POST_LOGOUT = "http://localhost:3000/"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return verifier, s256(verifier)


def authorize_params(client_id: str, **extra) -> dict:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
              "scope": "openid profile email offline_access", "state": "state-" + secrets.token_hex(4)}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def headless_code(client: httpx.Client, client_id: str, **extra) -> str:
    """Run /oauth/authorize on an auto-login instance and return the code it redirects with."""
    params = authorize_params(client_id, **extra)
    resp = client.get("/oauth/authorize", params=params)
    assert resp.status_code == 302, resp.text
    query = query_of(resp.headers["location"])
    assert query.get("state") == params["state"]
    assert "code" in query, query
    return query["code"]


def exchange(client: httpx.Client, env, code: str, **extra) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": env.client_id, "client_secret": env.client_secret}
    data.update(extra)
    return client.post("/oauth/token", data={k: v for k, v in data.items() if v is not None})


def node_env(instance, **extra) -> dict[str, str]:
    return {**os.environ, **instance.env_vars(), **extra}


# ---- clients of one instance ----------------------------------------------------------------------
def env_client(instance, **options) -> httpx.Client:
    """An httpx client for one local instance (its URL and CA bundle, 10 s timeout); use it in `with`."""
    return httpx.Client(base_url=instance.url, verify=instance.ca_bundle, timeout=10, **options)


def sdk_client(instance):
    """The unmodified Python SDK's client with the instance's own credentials (needs `trusting`)."""
    from scalekit import ScalekitClient

    return ScalekitClient(instance.url, instance.client_id, instance.client_secret)


@contextmanager
def trusting(instance):
    """This process trusts the instance's CA (its trust variables, not its credentials) until exit.
    grpcio reads its roots once per process; all fixture instances share one CA, so that stays harmless."""
    mp = pytest.MonkeyPatch()
    for key, value in instance.env_vars().items():
        if key not in ("SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET"):
            mp.setenv(key, value)
    try:
        yield
    finally:
        mp.undo()


# ---- small servers on 127.0.0.1 that the environment or a browser calls ----------------------------
class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log each request to stderr."""

    def log_message(self, *args):
        pass

    def send_body(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_on_loopback(handler: type[BaseHTTPRequestHandler], daemon_threads: bool = False) -> ThreadingHTTPServer:
    """Serve `handler` on a free 127.0.0.1 port from a daemon thread; stop it with server.shutdown()."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = daemon_threads
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def loopback_base(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"
