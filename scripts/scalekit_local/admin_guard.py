"""Cross-site protection for the admin routes under /_local/.

The admin routes change state without credentials (set a user's password, register a webhook that
receives login events, inject faults...). The environment listens on loopback, so the danger is a
web page in the developer's own browser posting to it. A browser can send a cross-site POST
without asking first only with a "simple" content type (text/plain, form encodings), so every
admin POST must carry `Content-Type: application/json`, which a page can only send after a CORS
preflight this server never approves (PUT, PATCH and DELETE always need that preflight). A request
whose `Origin` (or Fetch Metadata `Sec-Fetch-Site`) names another site is refused whatever its
method. Answers: 400 for a POST without the JSON content type, 403 `access_denied` for a foreign
origin (as token_matrix.py answers too); reads (GET, HEAD) are unaffected.
"""
from __future__ import annotations

import json

ADMIN_PREFIX = "/_local/"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def refusal(scope) -> tuple[int, str] | None:
    """(status, reason) when a request to an admin route must be refused, else None."""
    if scope["type"] != "http" or not scope["path"].startswith(ADMIN_PREFIX) or scope["method"] in SAFE_METHODS:
        return None
    site = (_header(scope, b"sec-fetch-site") or "").lower()
    if site in ("cross-site", "same-site"):
        return 403, "admin routes refuse cross-site requests"
    origin = _header(scope, b"origin")
    if origin is not None and origin.rstrip("/") not in _own_origins(scope):
        return 403, f"admin routes refuse requests from origin {origin!r}"
    ctype = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    if scope["method"] == "POST" and ctype != "application/json":
        return 400, "admin POST requests need Content-Type: application/json (also without a body)"
    return None


def _own_origins(scope) -> set[str]:
    host = _header(scope, b"host") or ""
    scheme = scope.get("scheme", "http")
    # Behind the front the HTTP backend sees plain HTTP, so accept both schemes for the same host.
    return {f"{scheme}://{host}", f"https://{host}", f"http://{host}"} if host else set()


class AdminGuard:
    """ASGI middleware: apply `refusal` before any admin route runs."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        problem = refusal(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, reason = problem
        body = json.dumps({"error": "access_denied" if status == 403 else "invalid_request",
                           "error_description": reason}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
