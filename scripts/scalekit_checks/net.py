"""Network calls with bounded time, and one place that turns any failure into an exit code and a
one-line message: DNS, refused, TLS trust, timeout, HTTP status, OAuth error, gRPC status.

Raw HTTP goes through `requests`, like the SDK's own HTTP calls, so both see the same trust
settings (REQUESTS_CA_BUNDLE). SDK calls run under `within()`, because the SDK's own HTTP timeouts
(10 s connect, 30 s read) cannot be changed.
"""
from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

import requests

from .report import CheckFailed, Exit

T = TypeVar("T")

# Set when a timed-out SDK call is left running in its thread; the script then exits with
# os._exit so that the abandoned call cannot hold the process open.
abandoned_threads = threading.Event()


def _all_causes(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or any(e is f for f in found):
            continue
        found.append(e)
        stack.extend([e.__cause__, e.__context__])
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        reason = getattr(e, "reason", None)  # urllib3 MaxRetryError.reason
        if isinstance(reason, BaseException):
            stack.append(reason)
    return found


def where(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def trust_hint(url: str) -> str:
    from .settings import is_loopback

    if is_loopback(urlsplit(url).hostname):
        return ("for the local Scalekit environment, export the trust variables that "
                "`python scripts/local_scalekit.py` prints (REQUESTS_CA_BUNDLE, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)")
    return "if a proxy re-signs TLS, point REQUESTS_CA_BUNDLE at a bundle that includes its CA"


def network_failure(exc: BaseException, what: str, url: str, timeout: float) -> CheckFailed | None:
    """Classify a transport-level failure, or return None if it is not one."""
    causes = _all_causes(exc)
    host = where(url)
    names = {type(e).__name__ for e in causes}
    text = " ".join(str(e) for e in causes).lower()
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in causes) or "certificate verify failed" in text:
        reason = next((e.verify_message for e in causes
                       if isinstance(e, ssl.SSLCertVerificationError) and e.verify_message), "certificate verify failed")
        return CheckFailed(Exit.NETWORK, f"{what}: TLS certificate of {host} is not trusted ({reason}); {trust_hint(url)}")
    if any(isinstance(e, socket.gaierror) for e in causes) or "NameResolutionError" in names:
        return CheckFailed(Exit.NETWORK, f"{what}: DNS lookup failed for {urlsplit(url).hostname}; check the host name in the URL")
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return CheckFailed(Exit.NETWORK, f"{what}: connection refused by {host}; nothing is listening there")
    if (any(isinstance(e, (requests.Timeout, TimeoutError, socket.timeout)) for e in causes)
            or "timed out" in text):
        return CheckFailed(Exit.NETWORK, f"{what}: no answer from {host} within {timeout:g} s (timeout)")
    if any(isinstance(e, ssl.SSLError) for e in causes):
        reason = next(str(e) for e in causes if isinstance(e, ssl.SSLError))
        return CheckFailed(Exit.NETWORK, f"{what}: TLS handshake with {host} failed ({reason[:160]})")
    if any(isinstance(e, (ConnectionError, requests.ConnectionError)) for e in causes):
        return CheckFailed(Exit.NETWORK, f"{what}: the connection to {host} failed or was closed without an answer")
    return None


def oauth_error(body: Any) -> tuple[str | None, str | None]:
    """(error, error_description) from an OAuth error body (dict or JSON text)."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            return None, None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error") if isinstance(body.get("error"), str) else None
    desc = body.get("error_description") if isinstance(body.get("error_description"), str) else None
    return error, (desc[:200] if desc else None)


OAUTH_ERROR_CODES = {
    "invalid_client": (Exit.AUTH, "the client id or secret is wrong, or the client does not exist"),
    "unauthorized_client": (Exit.AUTH, "this client may not use this grant type"),
    "invalid_grant": (Exit.AUTH, "the code, verifier or refresh token was rejected"),
    "access_denied": (Exit.AUTH, "the login was refused"),
    "invalid_scope": (Exit.CONFIG, "a requested scope is not allowed"),
}


def http_status_failure(what: str, status: int, body: Any, url: str) -> CheckFailed:
    error, desc = oauth_error(body)
    if error:
        code, meaning = OAUTH_ERROR_CODES.get(error, (Exit.PROTOCOL, "unexpected OAuth error"))
        detail = f" ({desc})" if desc else ""
        return CheckFailed(code, f"{what}: {error}: {meaning}{detail} (HTTP {status})", {"http_status": status, "error": error})
    if status in (401, 403):
        return CheckFailed(Exit.AUTH, f"{what}: HTTP {status} from {url}; check the client id and secret", {"http_status": status})
    if status == 404:
        return CheckFailed(Exit.PROTOCOL, f"{what}: HTTP 404 from {url}; is SCALEKIT_ENVIRONMENT_URL the environment URL from the dashboard?",
                           {"http_status": status})
    return CheckFailed(Exit.PROTOCOL, f"{what}: unexpected HTTP {status} from {url}", {"http_status": status})


def sdk_failure(exc: BaseException, what: str, url: str, timeout: float) -> CheckFailed:
    """Classify an exception raised by the Scalekit SDK (or anything under it)."""
    import grpc
    import jwt
    from scalekit.common.exceptions import ScalekitServerException

    if isinstance(exc, CheckFailed):
        return exc
    server = next((e for e in _all_causes(exc) if isinstance(e, ScalekitServerException)), None)
    if server is not None:
        answer = server.args[0] if server.args else None
        if isinstance(answer, requests.Response):  # an HTTP answer from /oauth/token or /keys
            if answer.status_code == 504 and answer.reason == "GATEWAY_TIMEOUT":  # the SDK's stand-in for a timeout
                return CheckFailed(Exit.NETWORK, f"{what}: no answer from {where(url)} within the SDK's HTTP timeout")
            return http_status_failure(what, answer.status_code, answer.text[:2000], answer.url or url)
        status = server.grpc_status
        message = " ".join(str(server.message or "").split())[:240]
        if status in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return CheckFailed(Exit.AUTH, f"{what}: {status.name}: {message}; check the client id and secret")
        if status == grpc.StatusCode.DEADLINE_EXCEEDED:
            return CheckFailed(Exit.NETWORK, f"{what}: no gRPC answer from {where(url)} within {timeout:g} s (timeout)")
        if status == grpc.StatusCode.UNAVAILABLE:
            hint = ""
            if "ssl" in message.lower() or "handshake" in message.lower() or "certificate" in message.lower():
                hint = "; gRPC does not trust the server certificate: set GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"
            return CheckFailed(Exit.NETWORK, f"{what}: gRPC UNAVAILABLE from {where(url)}: {message}{hint}")
        if status == grpc.StatusCode.UNIMPLEMENTED:
            return CheckFailed(Exit.PROTOCOL, f"{what}: this environment does not implement the API call "
                               f"(gRPC UNIMPLEMENTED: {message})")
        return CheckFailed(Exit.PROTOCOL, f"{what}: gRPC {getattr(status, 'name', status)}: {message}")
    net = network_failure(exc, what, url, timeout)
    if net is not None:
        return net
    if isinstance(exc, jwt.ImmatureSignatureError):
        return CheckFailed(Exit.CONFIG, f"{what}: the token is not valid yet ({exc}); this machine's clock is behind the server's")
    if isinstance(exc, jwt.ExpiredSignatureError):
        return CheckFailed(Exit.PROTOCOL, f"{what}: the token has already expired; check this machine's clock")
    if isinstance(exc, jwt.InvalidIssuerError):
        return CheckFailed(Exit.PROTOCOL, f"{what}: the token's iss does not match SCALEKIT_ENVIRONMENT_URL ({exc})")
    if isinstance(exc, jwt.InvalidAudienceError):
        return CheckFailed(Exit.PROTOCOL, f"{what}: the token's aud does not include the expected audience ({exc})")
    if isinstance(exc, jwt.InvalidTokenError):
        return CheckFailed(Exit.PROTOCOL, f"{what}: token rejected: {type(exc).__name__}: {exc}")
    if isinstance(exc, KeyError):
        return CheckFailed(Exit.PROTOCOL, f"{what}: the answer lacks the field {exc}; "
                           "(a missing 'kid' means a JWKS key or token header has no key id)")
    if isinstance(exc, ValueError) and "json" in str(exc).lower():
        return CheckFailed(Exit.PROTOCOL, f"{what}: the server answered with invalid JSON")
    return CheckFailed(Exit.PROTOCOL, f"{what}: unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:240]}")


def within(seconds: float, fn: Callable[[], T], what: str) -> T:
    """Run fn in a worker thread and give up after `seconds` (the SDK's own timeouts are fixed)."""
    box: dict[str, Any] = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True, name=f"sdk:{what}")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        abandoned_threads.set()
        raise CheckFailed(Exit.NETWORK, f"{what}: no answer within {seconds:g} s (timeout)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def sdk_call(fn: Callable[[], T], what: str, url: str, timeout: float) -> T:
    """An SDK call bounded by `timeout`, with any failure classified."""
    try:
        return within(timeout, fn, what)
    except Exception as exc:
        raise sdk_failure(exc, what, url, timeout) from None


class Http:
    """A requests session with one timeout, a latency log and classified failures."""

    def __init__(self, timeout: float, verify: str | bool | None = None):
        self.timeout = timeout
        self.session = requests.Session()
        if verify is not None:
            self.session.verify = verify
        self.latencies_ms: dict[str, float] = {}

    def request(self, method: str, url: str, what: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", (self.timeout, self.timeout))
        kwargs.setdefault("allow_redirects", False)
        start = time.perf_counter()
        try:
            response = self.session.request(method, url, **kwargs)
        except Exception as exc:
            failure = network_failure(exc, what, url, self.timeout)
            if failure is None:
                failure = CheckFailed(Exit.NETWORK, f"{what}: request to {url} failed: {type(exc).__name__}")
            raise failure from None
        self.latencies_ms[what] = round((time.perf_counter() - start) * 1000, 1)
        return response

    @staticmethod
    def json(response: requests.Response, what: str) -> dict:
        try:
            body = response.json()
        except ValueError:
            ctype = response.headers.get("content-type", "none")
            raise CheckFailed(Exit.PROTOCOL, f"{what}: {response.url} answered HTTP {response.status_code} "
                              f"with invalid JSON (content-type {ctype}, {len(response.content)} bytes)") from None
        if not isinstance(body, dict):
            raise CheckFailed(Exit.PROTOCOL, f"{what}: {response.url} answered JSON that is not an object")
        return body

    def get_json(self, url: str, what: str, **kwargs) -> tuple[dict, requests.Response]:
        response = self.request("GET", url, what, **kwargs)
        if response.status_code != 200:
            raise http_status_failure(what, response.status_code, response.text[:2000], url)
        return self.json(response, what), response


def grpc_roots_file() -> str:
    """The CA file grpc-core uses: GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, else the roots bundled with grpcio."""
    configured = os.environ.get("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH")
    if configured:
        return configured
    import grpc

    return os.path.join(os.path.dirname(grpc.__file__), "_cython", "_credentials", "roots.pem")


def check_grpc_tls(url: str, timeout: float) -> str:
    """Do the TLS handshake gRPC will do (its CA file, ALPN h2) and explain a failure at once,
    instead of after the SDK's UNAVAILABLE retries with backoff."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 443
    roots = grpc_roots_file()
    what = "grpc tls"
    if not os.path.isfile(roots):
        raise CheckFailed(Exit.CONFIG, f"{what}: GRPC_DEFAULT_SSL_ROOTS_FILE_PATH points at {roots}, which does not exist")
    context = ssl.create_default_context(cafile=roots)
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                alpn = tls.selected_alpn_protocol()
    except ssl.SSLCertVerificationError as exc:
        source = ("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH" if os.environ.get("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH")
                  else "grpcio's bundled roots (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH is not set)")
        raise CheckFailed(Exit.NETWORK, f"{what}: {where(url)} presents a certificate that {source} does not trust "
                          f"({exc.verify_message}); {trust_hint(url)}") from None
    except Exception as exc:
        failure = network_failure(exc, what, url, timeout)
        raise (failure or CheckFailed(Exit.NETWORK, f"{what}: handshake with {where(url)} failed ({exc})")) from None
    if alpn != "h2":
        raise CheckFailed(Exit.PROTOCOL, f"{what}: {where(url)} did not agree to HTTP/2 (ALPN h2), which gRPC needs")
    return roots
