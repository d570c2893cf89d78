"""Fault injection: make chosen HTTP endpoints or gRPC methods fail, answer garbage, or answer slowly.

A fault is one line, on the command line (`--fault SPEC`, repeatable) or in `{"spec": SPEC}` to
`POST /_local/faults`::

    TARGET=ACTION[,ACTION...][ xN]

    TARGET   METHOD /path           HTTP, e.g. "POST /oauth/token", "GET /keys" (path without query)
             /path                  HTTP, any method
             rpc:Service/Method     gRPC, e.g. "rpc:OrganizationService/ListOrganization"; the service
                                    may be the full name (scalekit.v1.organizations.OrganizationService),
                                    Method may be *; "rpc:Method" matches that method of any service
    ACTION   400..599               HTTP: answer this status with an OAuth-style JSON error body
             CODE                   gRPC: abort with this status code (UNAVAILABLE, NOT_FOUND, INTERNAL,
                                    ...), with Scalekit's ErrorInfo detail (error_code FAULT_INJECTED)
             delay:3s | delay:250ms answer this much later (alone: then answer normally)
             invalid_json           HTTP: 200 with a body that is not JSON (content-type application/json)
             drop_kid               HTTP: remove "kid" from every key of a JWKS answer (/keys)
             issuer:VALUE           HTTP: replace "issuer" in a JSON answer (discovery)
    xN       only the next N matching requests (then the fault is spent); without it, every one

Examples: `POST /oauth/token=500 x3`, `rpc:OrganizationService/ListOrganization=UNAVAILABLE x2`,
`GET /keys=delay:3s`, `GET /.well-known/openid-configuration=issuer:https://other.example.com`.

The same as JSON: `{"target": "POST /oauth/token", "status": 500, "count": 3}`; other keys:
`grpc_code`, `delay_ms`, `invalid_json`, `drop_kid`, `issuer`. Admin routes (/_local/...) are never
faulted. gRPC faults apply only to calls that passed authentication (the Node SDK's first, token-less
call is answered UNAUTHENTICATED and does not count).

    GET    /_local/faults          active and spent faults with hits and remaining counts
    POST   /_local/faults          add one -> 201
    DELETE /_local/faults          remove all;  DELETE /_local/faults/{id}: remove one
"""
from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from .safe_input import loads_json

ADMIN_PREFIX = "/_local/"
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
MAX_DELAY_MS = 600_000
OAUTH_ERRORS = {400: "invalid_request", 401: "invalid_client", 403: "access_denied", 404: "not_found",
                429: "slow_down", 503: "temporarily_unavailable"}
GRPC_CODES = {c.name: c for c in grpc.StatusCode if c is not grpc.StatusCode.OK}
INVALID_JSON_BODY = b'{"issuer": "truncated'


class FaultError(ValueError):
    """A fault spec or JSON body that cannot be used; str() names the problem."""


@dataclass
class Fault:
    id: str
    kind: str                        # "http" | "rpc"
    method: str | None = None        # HTTP method or None (any)
    path: str | None = None          # HTTP path
    service: str | None = None       # rpc service (short or full name) or None (any)
    rpc: str | None = None           # rpc method or "*"
    status: int | None = None
    grpc_code: str | None = None
    delay_ms: int = 0
    invalid_json: bool = False
    drop_kid: bool = False
    issuer: str | None = None
    count: int | None = None         # None: unlimited
    hits: int = 0
    created_at: float = field(default_factory=time.time)

    @property
    def target(self) -> str:
        if self.kind == "rpc":
            return f"rpc:{self.service}/{self.rpc}" if self.service else f"rpc:{self.rpc}"
        return f"{self.method} {self.path}" if self.method else self.path

    @property
    def remaining(self) -> int | None:
        return None if self.count is None else max(self.count - self.hits, 0)

    def spent(self) -> bool:
        return self.count is not None and self.hits >= self.count

    def public(self) -> dict[str, Any]:
        out = {"id": self.id, "target": self.target, "count": self.count, "hits": self.hits,
               "remaining": self.remaining, "active": not self.spent()}
        for key in ("status", "grpc_code", "issuer"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.delay_ms:
            out["delay_ms"] = self.delay_ms
        for key in ("invalid_json", "drop_kid"):
            if getattr(self, key):
                out[key] = True
        return out

    def matches_http(self, method: str, path: str) -> bool:
        return self.kind == "http" and self.path == path and (self.method is None or self.method == method)

    def matches_rpc(self, full_method: str) -> bool:
        if self.kind != "rpc":
            return False
        service, _, name = full_method.lstrip("/").rpartition("/")
        if self.rpc not in ("*", name):
            return False
        return self.service is None or self.service in (service, service.rsplit(".", 1)[-1])


# ---- parsing -------------------------------------------------------------------------------------------
def _parse_target(target: str) -> dict[str, Any]:
    target = (target or "").strip()
    if target.startswith("rpc:"):
        rest = target[4:].strip().lstrip("/")
        service, _, rpc = rest.rpartition("/")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*|\*", rpc) or (service and not re.fullmatch(r"[A-Za-z0-9_.]+", service)):
            raise FaultError(f"bad gRPC target {target!r}: use rpc:Service/Method, e.g. rpc:OrganizationService/ListOrganization")
        return {"kind": "rpc", "service": service or None, "rpc": rpc}
    method, _, path = target.rpartition(" ")
    method = method.strip().upper() or None
    if method is not None and method not in HTTP_METHODS:
        raise FaultError(f"bad HTTP method {method!r} in target {target!r}")
    if not path.startswith("/"):
        raise FaultError(f"bad target {target!r}: use 'METHOD /path', '/path' or 'rpc:Service/Method'")
    path = re.sub(r"/{2,}", "/", path.split("?", 1)[0])
    if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/"):
        raise FaultError("admin routes under /_local/ cannot be faulted")
    return {"kind": "http", "method": method, "path": path}


def _parse_duration_ms(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s)?", text.strip())
    if not m:
        raise FaultError(f"bad delay {text!r}: use e.g. delay:3s or delay:250ms")
    value = float(m.group(1)) * (1 if m.group(2) == "ms" else 1000)
    if value > MAX_DELAY_MS:
        raise FaultError(f"delay {text!r} is longer than {MAX_DELAY_MS // 1000} s")
    return int(value)


def parse_spec(spec: str) -> dict[str, Any]:
    """`TARGET=ACTION[,ACTION...][ xN]` -> keyword arguments of FaultRegistry.add. Raises FaultError."""
    if not isinstance(spec, str) or "=" not in spec:
        raise FaultError(f"bad fault {spec!r}: use TARGET=ACTION[ xN], e.g. 'POST /oauth/token=500 x3'")
    target, _, actions = spec.partition("=")
    fields = _parse_target(target)
    actions = actions.strip()
    m = re.search(r"(?:^|(?<=[\s\d,]))x\s*(\d+)\s*$", actions)
    if m:
        fields["count"] = int(m.group(1))
        actions = actions[:m.start()].strip().rstrip(",").strip()
    if not actions:
        raise FaultError(f"bad fault {spec!r}: no action after '='")
    for action in (a.strip() for a in actions.split(",")):
        low = action.lower()
        if re.fullmatch(r"\d{3}", action):
            fields["status"] = int(action)
        elif action.upper() in GRPC_CODES:
            fields["grpc_code"] = action.upper()
        elif low.startswith("delay:"):
            fields["delay_ms"] = _parse_duration_ms(action[6:])
        elif low == "invalid_json":
            fields["invalid_json"] = True
        elif low == "drop_kid":
            fields["drop_kid"] = True
        elif low.startswith("issuer:"):
            fields["issuer"] = action[7:].strip()
        else:
            raise FaultError(f"bad action {action!r} in {spec!r}: use a status (500), a gRPC code (UNAVAILABLE), "
                             "delay:3s, invalid_json, drop_kid or issuer:VALUE")
    return fields


def from_json(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise FaultError("the body must be a JSON object")
    if "spec" in body:
        if set(body) != {"spec"}:
            raise FaultError("send either {'spec': ...} or target and actions, not both")
        return parse_spec(body["spec"])
    unknown = set(body) - {"target", "status", "grpc_code", "delay_ms", "invalid_json", "drop_kid", "issuer", "count"}
    if unknown:
        raise FaultError(f"unknown key {min(unknown)!r}")
    if not isinstance(body.get("target"), str):
        raise FaultError("target is required, e.g. 'POST /oauth/token' or 'rpc:OrganizationService/ListOrganization'")
    fields = _parse_target(body["target"])
    if body.get("status") is not None:
        fields["status"] = body["status"]
    if body.get("grpc_code") is not None:
        if not isinstance(body["grpc_code"], str) or body["grpc_code"].upper() not in GRPC_CODES:
            raise FaultError(f"grpc_code must be one of {', '.join(GRPC_CODES)}")
        fields["grpc_code"] = body["grpc_code"].upper()
    for key in ("delay_ms", "count"):
        if body.get(key) is not None:
            fields[key] = body[key]
    for key in ("invalid_json", "drop_kid"):
        if body.get(key) is not None:
            fields[key] = body[key]
    if body.get("issuer") is not None:
        fields["issuer"] = body["issuer"]
    return fields


def _validate(f: dict[str, Any]) -> None:
    http = f["kind"] == "http"
    status, code = f.get("status"), f.get("grpc_code")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599):
        raise FaultError("status must be an HTTP error status from 400 to 599")
    if http and code:
        raise FaultError("grpc_code applies to rpc: targets; use an HTTP status for HTTP targets")
    if not http and (status is not None or f.get("invalid_json") or f.get("drop_kid") or f.get("issuer") is not None):
        raise FaultError("rpc: targets take a gRPC code (e.g. UNAVAILABLE) and/or delay")
    if not isinstance(f.get("delay_ms", 0), int) or not 0 <= f.get("delay_ms", 0) <= MAX_DELAY_MS:
        raise FaultError(f"delay_ms must be an integer from 0 to {MAX_DELAY_MS}")
    count = f.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise FaultError("count must be a positive integer (omit it for every request)")
    for key in ("invalid_json", "drop_kid"):
        if not isinstance(f.get(key, False), bool):
            raise FaultError(f"{key} must be true or false")
    if f.get("issuer") is not None and (not isinstance(f["issuer"], str) or not f["issuer"]):
        raise FaultError("issuer must be a non-empty string")
    outcomes = [status is not None, bool(code), bool(f.get("invalid_json"))]
    if sum(outcomes) > 1:
        raise FaultError("choose one of status, grpc_code and invalid_json")
    if not any(outcomes) and not f.get("delay_ms") and not f.get("drop_kid") and f.get("issuer") is None:
        raise FaultError("the fault does nothing: give a status, grpc_code, delay, invalid_json, drop_kid or issuer")


class FaultRegistry:
    """store.faults: thread-safe; HTTP handlers (event loop) and gRPC workers consult it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, **fields: Any) -> Fault:
        _validate(fields)
        with self._lock:
            fault = Fault(id=f"flt_{next(self._ids)}", **fields)
            self._faults.append(fault)
        return fault

    def add_spec(self, spec: str) -> Fault:
        return self.add(**parse_spec(spec))

    def clear(self) -> int:
        with self._lock:
            n, self._faults = len(self._faults), []
            return n

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.public() for f in self._faults]

    def _take(self, predicate) -> Fault | None:
        if not self._faults:  # fast path, no lock
            return None
        with self._lock:
            for fault in self._faults:
                if not fault.spent() and predicate(fault):
                    fault.hits += 1
                    return fault
        return None

    def take_http(self, method: str, path: str) -> Fault | None:
        if path.startswith(ADMIN_PREFIX):
            return None
        return self._take(lambda f: f.matches_http(method, path))

    def take_rpc(self, full_method: str) -> Fault | None:
        return self._take(lambda f: f.matches_rpc(full_method))


# ---- HTTP: ASGI middleware ------------------------------------------------------------------------------
class FaultMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        ctx = scope["app"].state.ctx if "app" in scope else None
        faults = getattr(getattr(ctx, "store", None), "faults", None)
        fault = faults.take_http(scope["method"], scope["path"]) if faults is not None else None
        if fault is None:
            return await self.app(scope, receive, send)
        ctx.store.count("faults.http")
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.status is not None:
            error = OAUTH_ERRORS.get(fault.status, "server_error" if fault.status >= 500 else "invalid_request")
            body = json.dumps({"error": error, "error_description":
                               f"fault injected by the local Scalekit environment ({fault.id})"}).encode()
            return await _send(send, fault.status, body)
        if fault.invalid_json:
            return await _send(send, 200, INVALID_JSON_BODY)
        if fault.drop_kid or fault.issuer is not None:
            return await self._rewrite(fault, scope, receive, send)
        return await self.app(scope, receive, send)

    async def _rewrite(self, fault: Fault, scope, receive, send):
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            if fault.issuer is not None and "issuer" in doc:
                doc["issuer"] = fault.issuer
            if fault.drop_kid and isinstance(doc.get("keys"), list):
                doc["keys"] = [{k: v for k, v in key.items() if k != "kid"} if isinstance(key, dict) else key
                               for key in doc["keys"]]
            body = json.dumps(doc).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 200), "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _send(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


# ---- gRPC: a second server interceptor (after authentication) ----------------------------------------------
class FaultInterceptor(grpc.ServerInterceptor):
    def __init__(self, ctx):
        self.ctx = ctx

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        faults = getattr(self.ctx.store, "faults", None)
        if faults is None or handler is None or handler.unary_unary is None:
            return handler
        fault = faults.take_rpc(handler_call_details.method)
        if fault is None:
            return handler
        self.ctx.store.count("faults.grpc")
        inner = handler.unary_unary

        def faulty(request, context):
            if fault.delay_ms:
                time.sleep(fault.delay_ms / 1000)
            if fault.grpc_code:
                from .services import abort_with_error

                abort_with_error(context, GRPC_CODES[fault.grpc_code], "FAULT_INJECTED",
                                 f"fault injected by the local Scalekit environment ({fault.id})")
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(faulty, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


# ---- admin routes ----------------------------------------------------------------------------------------------
async def list_faults(request):
    from starlette.responses import JSONResponse

    return JSONResponse({"faults": request.app.state.ctx.store.faults.list()})


async def add_fault(request):
    from starlette.responses import JSONResponse

    try:
        try:
            body = loads_json(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise FaultError("the body must be a JSON object") from None
        fault = request.app.state.ctx.store.faults.add(**from_json(body))
    except FaultError as exc:
        return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, status_code=400)
    return JSONResponse(fault.public(), status_code=201)


async def clear_faults(request):
    from starlette.responses import JSONResponse

    return JSONResponse({"removed": request.app.state.ctx.store.faults.clear()})


async def remove_fault(request):
    from starlette.responses import JSONResponse, Response

    if not request.app.state.ctx.store.faults.remove(request.path_params["fault_id"]):
        return JSONResponse({"error": "not_found", "error_description": "no such fault"}, status_code=404)
    return Response(status_code=204)


def routes() -> list:
    from starlette.routing import Route

    return [
        Route("/_local/faults", list_faults),
        Route("/_local/faults", add_fault, methods=["POST"]),
        Route("/_local/faults", clear_faults, methods=["DELETE"]),
        Route("/_local/faults/{fault_id}", remove_fault, methods=["DELETE"]),
    ]
