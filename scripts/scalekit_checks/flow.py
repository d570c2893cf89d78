"""Pieces of the login flow that the SDK does not provide: PKCE for the Python SDK's authorization
URL, the loopback listener that receives the callback, and reading an authorization server's
error page."""
from __future__ import annotations

import base64
import errno
import hashlib
import html
import queue
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from .report import CheckFailed, Exit
from .settings import is_loopback

OAUTH_ERRORS = ("invalid_request", "invalid_client", "unauthorized_client", "access_denied", "invalid_scope",
                "unsupported_response_type", "server_error", "temporarily_unavailable", "login_required",
                "redirect_uri_mismatch")


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(48)  # 64 characters from the unreserved set
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


def add_pkce(authorization_url: str, challenge: str) -> str:
    """scalekit-sdk-python 2.21 builds the URL without PKCE parameters; append them."""
    return f"{authorization_url}&{urlencode({'code_challenge': challenge, 'code_challenge_method': 'S256'})}"


def describe_refusal(response) -> str:
    """One line from an authorization server's error answer (JSON or an HTML page)."""
    text = response.text[:20000]
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("error"):
            return f"{body['error']}: {body.get('error_description') or ''}".strip(": ")
    except ValueError:
        pass
    message = re.search(r'id="message"[^>]*>(.*?)</', text, re.S) or re.search(r"<h1[^>]*>(.*?)</h1>", text, re.S) \
        or re.search(r"<title[^>]*>(.*?)</title>", text, re.S)
    code = re.search(r"\b(" + "|".join(OAUTH_ERRORS) + r")\b", text)
    parts = [code.group(1) if code else None, html.unescape(re.sub(r"<[^>]+>", " ", message.group(1))) if message else None]
    return " ".join(" ".join(p for p in parts if p).split())[:300] or "no error description"


class CallbackListener:
    """A one-purpose HTTP server on the redirect URI's loopback host and port. It records the
    query of each request to the callback path and the post-logout path. Port 0 picks a free
    port; `redirect_uri` and `post_logout_uri` then carry the real one."""

    def __init__(self, redirect_uri: str, post_logout_uri: str | None):
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or not is_loopback(parts.hostname) or parts.port is None:
            raise CheckFailed(Exit.CONFIG, f"the redirect URI {redirect_uri} must be http://localhost:PORT/... or "
                              "http://127.0.0.1:PORT/..., because this script receives the callback itself")
        self.host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
        self.paths = {parts.path or "/": "callback"}
        if post_logout_uri:
            logout = urlsplit(post_logout_uri)
            if (logout.hostname, logout.port) == (parts.hostname, parts.port):
                self.paths[logout.path or "/"] = "logout"
        self.events: queue.Queue = queue.Queue()
        handler = self._handler()
        try:
            self.server = ThreadingHTTPServer((self.host, parts.port), handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CheckFailed(Exit.CONFIG, f"port {parts.port} is already in use, so the callback cannot be "
                                  "received; stop what uses it or pass --redirect-uri with another registered "
                                  "loopback URL") from None
            raise CheckFailed(Exit.CONFIG, f"cannot listen on {self.host}:{parts.port} ({exc.strerror})") from None
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.redirect_uri = redirect_uri.replace(f":{parts.port}/", f":{self.port}/", 1)
        self.post_logout_uri = post_logout_uri
        if post_logout_uri and "logout" in self.paths.values():
            self.post_logout_uri = post_logout_uri.replace(f":{parts.port}/", f":{self.port}/", 1)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="callback-listener")
        self.thread.start()

    def _handler(self):
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                kind = listener.paths.get(parts.path)
                if kind is None:
                    self.send_error(404)
                    return
                listener.events.put((kind, dict(parse_qsl(parts.query, keep_blank_values=True))))
                page = (b"<!doctype html><title>scalekit-auth</title><p>test_auth_flow.py received the "
                        + kind.encode() + b". You can close this tab.</p>")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):  # the report says what happened; no access log
                pass

        return Handler

    def wait(self, kind: str, seconds: float) -> dict:
        try:
            while True:
                got, params = self.events.get(timeout=seconds)
                if got == kind:
                    return params
        except queue.Empty:
            raise CheckFailed(Exit.NETWORK, f"no {kind} arrived at http://{self.host}:{self.port} within {seconds:g} s "
                              "(timeout)") from None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
