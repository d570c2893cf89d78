"""Small misbehaving servers on 127.0.0.1 for what the local environment's fault injection cannot
do: TLS with an untrusted certificate, a port that accepts and never answers, a closed port.
(500s, invalid JSON, a wrong issuer, a key without kid and slow answers come from
`scripts/local_scalekit.py --fault`.) The scripts under test and the SDK they call are always the
real ones.
"""
from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def _public_jwk() -> dict:
    """A real RS256 public key, so that only the property under test is wrong."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key)) | {"use": "sig", "alg": "RS256", "kid": "snk_test_1"}


PUBLIC_KEY = _public_jwk()


def discovery_doc(issuer: str) -> dict:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/keys",
        "end_session_endpoint": f"{issuer}/oidc/logout",
    }


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}  # path -> callable(base_url) -> (status, content_type, body bytes)
    default = (404, "application/json", b'{"error":"not_found"}')
    delay_s = 0.0
    base_url = ""

    def _answer(self):
        if self.delay_s:
            time.sleep(self.delay_s)
        route = self.routes.get(self.path.split("?")[0])
        status, ctype, body = route(self.base_url) if route else self.default
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client under test gave up (timeout cases)
            pass

    do_GET = do_POST = _answer

    def log_message(self, *args):  # keep test output quiet
        pass


def _json(status: int, doc) -> callable:
    return lambda base: (status, "application/json", json.dumps(doc(base) if callable(doc) else doc).encode())


SCENARIOS = {
    # behind untrusted_tls(): a plausible environment, so only the certificate is wrong
    "issuer_mismatch": {"routes": {"/.well-known/openid-configuration":
                                   _json(200, lambda base: discovery_doc("https://other-env.scalekit.com"))}},
}


@contextmanager
def faulty_http(scenario: str, tls_context: ssl.SSLContext | None = None):
    """Serve one scenario on 127.0.0.1; yields the base URL (http://, or https:// with tls_context)."""
    spec = SCENARIOS[scenario]
    handler = type("Handler", (_Handler,), {
        "routes": spec.get("routes", {}),
        "default": spec.get("default", _Handler.default),
        "delay_s": spec.get("delay_s", 0.0),
    })
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    scheme = "http"
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    handler.base_url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler.base_url
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def untrusted_tls():
    """A TLS server whose self-signed CA nobody trusts; yields its https:// URL."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with faulty_http("issuer_mismatch", tls_context=context) as url:
        yield url


@contextmanager
def silent_port():
    """A listening socket that never accepts or answers: connects succeed, then nothing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", f"https://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def closed_port() -> int:
    """A port with nothing listening on it (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
