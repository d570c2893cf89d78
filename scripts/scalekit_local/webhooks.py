"""Events and webhooks: an event bus in the store, signed deliveries with retries, a delivery log.

Emitting (from any module, any thread; never blocks, never raises into the caller)::

    store.events.emit("organization.created", organization_json(org), organization_id=org.id)
    store.events.emit(type, data, organization_id=None, object=None) -> the event dict

`data` is a JSON-able dict (helpers below build the documented shapes: organization_json,
user_json, membership_data, signup_data). `object` defaults from EVENT_OBJECTS by type. Every event is
kept in a ring (GET /_local/events) and queued for each registered endpoint whose `events` filter
matches it; a background thread posts it. An event looks like Scalekit's::

    {"spec_version": "1", "id": "evt_...", "type": "organization.created",
     "occurred_at": "2025-01-15T08:55:22.802860Z", "environment_id": "env_...",
     "organization_id": "org_..." (when given), "object": "Organization", "data": {...}}

Deliveries are Standard-Webhooks signed, as both SDKs' verify functions expect: headers
`webhook-id` (the event id, the same on every attempt), `webhook-timestamp` (unix seconds of the
attempt) and `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>` where key is
base64-decoded from the endpoint secret `whsec_<base64>`. A 2xx answer is success; anything else
(status, connection error, timeout) is retried after retry_delays_ms[attempt-1] (the last value
repeats) until max_attempts, then the delivery is `failed`.

Endpoints come from the seed (`webhooks: [{url, secret, events, max_attempts, retry_delays_ms,
timeout_ms}]`) or from `POST /_local/webhooks` at runtime. Admin routes (routes() below):

    GET    /_local/webhooks                     registered endpoints (with secrets: local only)
    POST   /_local/webhooks                     register: {url, secret?, events?, max_attempts?,
                                                retry_delays_ms?, timeout_ms?} -> 201 endpoint
    DELETE /_local/webhooks/{id}                remove one
    GET    /_local/webhooks/deliveries          delivery log; filters ?event_id= &type= &state= &endpoint_id=
    GET    /_local/events                       recent events (newest last); filter ?type=
    POST   /_local/events                       emit an event: {type, data?, organization_id?}
"""
from __future__ import annotations

import base64
import binascii
import collections
import datetime
import fnmatch
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .safe_input import loads_json

log = logging.getLogger("scalekit_local.webhooks")

DEFAULT_ENVIRONMENT_ID = "env_70000000000000000"
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_RETRY_DELAYS_MS = (1000, 5000, 30000)
DEFAULT_TIMEOUT_MS = 5000
EVENT_RING = 1000
DELIVERY_LOG = 2000

# Event types the environment emits, with the `object` Scalekit names in the payload.
EVENT_OBJECTS = {
    "organization.created": "Organization",
    "organization.updated": "Organization",
    "organization.deleted": "Organization",
    "user.created": "User",
    "user.updated": "User",
    "user.deleted": "User",
    # openapi/scalekit.yaml: UserSignupEvent.object is OrgMembership; UserLoginEvent and
    # UserLogoutEvent have the object User.
    "user.signup": "OrgMembership",
    "user.login": "User",
    "user.logout": "User",
    "user.organization_membership_created": "OrgMembership",
    "user.organization_membership_updated": "OrgMembership",
    "user.organization_membership_deleted": "OrgMembership",
    "organization.directory.user_created": "DirectoryUser",
    "organization.directory.user_updated": "DirectoryUser",
    "organization.directory.user_deleted": "DirectoryUser",
    "organization.directory.group_created": "DirectoryGroup",
    "organization.directory.group_updated": "DirectoryGroup",
    "organization.directory.group_deleted": "DirectoryGroup",
    "organization.directory_enabled": "Directory",
}


def rfc3339(seconds: float | None = None) -> str:
    moment = datetime.datetime.fromtimestamp(time.time() if seconds is None else seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (the SDKs split on '_' and decode the second part)."""
    if not isinstance(secret, str) or not secret.startswith("whsec_") or secret.count("_") != 1:
        raise ValueError("secret must look like whsec_<base64>")
    try:
        key = base64.b64decode(secret[6:], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret must look like whsec_<base64> (standard base64 after whsec_)") from None
    if len(key) < 16:
        raise ValueError("secret key must be at least 16 bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard-Webhooks headers for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    sig = base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{sig}"}


# ---- payload builders (used by the emitters; tolerant of the store's dataclasses) ----------------
def organization_json(org) -> dict[str, Any]:
    return {
        "id": org.id, "display_name": org.display_name, "external_id": org.external_id,
        "region_code": getattr(org, "region_code", "US"), "metadata": dict(getattr(org, "metadata", {}) or {}) or None,
        "create_time": rfc3339(getattr(org, "created_at", None)), "update_time": rfc3339(getattr(org, "updated_at", None)),
        "settings": {"features": [{"name": "sso", "enabled": True}, {"name": "dir_sync", "enabled": False}]},
    }


def user_json(user) -> dict[str, Any]:
    return {
        "id": user.id, "email": user.email, "external_id": user.external_id or "",
        "metadata": dict(getattr(user, "metadata", {}) or {}),
        "create_time": rfc3339(getattr(user, "created_at", None)),
        "update_time": rfc3339(getattr(user, "updated_at", None) or getattr(user, "created_at", None)),
        "user_profile": {
            "email_verified": user.email_verified, "given_name": user.given_name, "family_name": user.family_name,
            "name": user.display_name,
        },
        "memberships": [{"organization_id": m.organization_id, "roles": [{"name": r} for r in m.roles]}
                        for m in getattr(user, "memberships", [])],
    }


def membership_data(user, organization_id: str, roles: list[str] | None = None,
                    provisioning_method: str = "jit") -> dict[str, Any]:
    membership = user.membership(organization_id) if hasattr(user, "membership") else None
    roles = list(roles if roles is not None else (membership.roles if membership else []))
    return {
        "organization": {"id": organization_id},
        "user": {"id": user.id, "email": user.email, "membership": {
            "organization_id": organization_id, "membership_status": "ACTIVE",
            "provisioning_method": provisioning_method, "roles": [{"name": r} for r in roles],
            "created_at": rfc3339(), "accepted_at": rfc3339(),
        }},
    }


def login_data(user, session) -> dict[str, Any]:
    """UserAuthEventData (openapi/scalekit.yaml): {user, user_session}. Session fields the local
    environment has no value for (expiry policy, device) are left out."""
    login_time = rfc3339(session.created_at)
    account = {k: v for k, v in user_json(user).items() if k != "memberships"}
    account["last_login_time"] = login_time
    orgs = [session.organization_id] if session.organization_id else []
    return {
        "user": account,
        "user_session": {
            "session_id": session.id, "user_id": user.id, "organization_id": session.organization_id,
            "status": "ACTIVE" if session.active else "LOGGED_OUT", "created_at": login_time, "updated_at": login_time,
            "last_active_at": login_time, "expired_at": None, "logout_at": None,
            "authenticated_organizations": orgs,
        },
    }


def signup_data(user, org) -> dict[str, Any]:
    return {"organization": organization_json(org), "user": user_json(user)}


# ---- endpoints and deliveries ---------------------------------------------------------------------
@dataclass
class Endpoint:
    id: str
    url: str
    secret: str
    events: list[str] = field(default_factory=list)  # exact types or shell patterns; empty: all
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_delays_ms: list[int] = field(default_factory=lambda: list(DEFAULT_RETRY_DELAYS_MS))
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    def wants(self, event_type: str) -> bool:
        return not self.events or any(fnmatch.fnmatchcase(event_type, p) for p in self.events)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "secret": self.secret, "events": list(self.events),
                "max_attempts": self.max_attempts, "retry_delays_ms": list(self.retry_delays_ms),
                "timeout_ms": self.timeout_ms}


def endpoint_from(spec: dict[str, Any], endpoint_id: str | None = None) -> Endpoint:
    """Validates a seed item or a POST body; raises ValueError with a user-facing message."""
    if not isinstance(spec, dict):
        raise ValueError("a webhook endpoint must be an object")  # noqa: TRY004 - a 400 answer
    unknown = set(spec) - {"id", "url", "secret", "events", "max_attempts", "retry_delays_ms", "timeout_ms"}
    if unknown:
        raise ValueError(f"unknown key {min(unknown)!r}")
    url = spec.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError("url must be an http:// or https:// URL")
    secret = spec.get("secret") or new_secret()
    secret_key(secret)
    events = spec.get("events") or []
    if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
        raise ValueError("events must be a list of event types (shell patterns such as 'organization.directory.*' work)")
    attempts = spec.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
    if not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise ValueError("max_attempts must be an integer from 1 to 20")
    delays = spec.get("retry_delays_ms", list(DEFAULT_RETRY_DELAYS_MS))
    if not isinstance(delays, list) or not delays or not all(isinstance(d, int) and 0 <= d <= 3_600_000 for d in delays):
        raise ValueError("retry_delays_ms must be a non-empty list of milliseconds (0 to 3600000)")
    timeout = spec.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    if not isinstance(timeout, int) or not 1 <= timeout <= 120_000:
        raise ValueError("timeout_ms must be an integer from 1 to 120000")
    return Endpoint(id=spec.get("id") or endpoint_id or f"whe_{secrets.token_hex(8)}", url=url, secret=secret,
                    events=list(events), max_attempts=attempts, retry_delays_ms=list(delays), timeout_ms=timeout)


@dataclass
class Delivery:
    id: str
    event: dict[str, Any]
    body: bytes
    endpoint: Endpoint
    attempts: int = 0
    status_codes: list[int | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    state: str = "pending"  # pending | succeeded | failed
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "event_id": self.event["id"], "type": self.event["type"], "url": self.endpoint.url,
                "endpoint_id": self.endpoint.id, "attempts": self.attempts, "status_codes": list(self.status_codes),
                "errors": list(self.errors), "state": self.state, "created_at": rfc3339(self.created_at),
                "finished_at": rfc3339(self.finished_at) if self.finished_at else None}


class EventBus:
    """store.events: emit events, keep the recent ones, deliver them to webhook endpoints."""

    def __init__(self, environment_id: str = DEFAULT_ENVIRONMENT_ID, endpoints: list[dict] | None = None):
        self.environment_id = environment_id
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.endpoints: dict[str, Endpoint] = {}
        self.events: collections.deque[dict] = collections.deque(maxlen=EVENT_RING)
        self.deliveries: collections.OrderedDict[str, Delivery] = collections.OrderedDict()
        self._due: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        for i, spec in enumerate(endpoints or []):
            self.add_endpoint(spec, endpoint_id=f"whe_seed_{i}")

    # ---- endpoints ----------------------------------------------------------------------------
    def add_endpoint(self, spec: dict[str, Any], endpoint_id: str | None = None) -> Endpoint:
        endpoint = endpoint_from(spec, endpoint_id)
        with self._lock:
            self.endpoints[endpoint.id] = endpoint
        return endpoint

    def remove_endpoint(self, endpoint_id: str) -> bool:
        with self._lock:
            return self.endpoints.pop(endpoint_id, None) is not None

    # ---- emitting -----------------------------------------------------------------------------
    def emit(self, type: str, data: dict[str, Any] | None = None, organization_id: str | None = None,
             object: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {"spec_version": "1", "id": f"evt_{10**17 + secrets.randbelow(9 * 10**17)}",
                                 "type": type, "occurred_at": rfc3339(), "environment_id": self.environment_id}
        if organization_id:
            event["organization_id"] = organization_id
        event["object"] = object or EVENT_OBJECTS.get(type, "JSON")
        event["data"] = data or {}
        try:
            body = json.dumps(event, separators=(",", ":"), default=str).encode()
        except (TypeError, ValueError):  # never fail the caller
            log.exception("event %s is not JSON-able", type)
            return event
        with self._lock:
            self.events.append(event)
            targets = [e for e in self.endpoints.values() if e.wants(type)]
            for endpoint in targets:
                delivery = Delivery(f"whd_{secrets.token_hex(8)}", event, body, endpoint)
                self.deliveries[delivery.id] = delivery
                while len(self.deliveries) > DELIVERY_LOG:
                    self.deliveries.popitem(last=False)
                heapq.heappush(self._due, (time.monotonic(), next(self._seq), delivery))
            if targets and not self._closed:
                self._ensure_thread()
                self._cond.notify()
        log.debug("event %s %s -> %d endpoint(s)", type, event["id"], len(targets))
        return event

    def provisioned(self, user, organization_id: str, *, new_user: bool, new_org=None) -> None:
        """A just-in-time login created a user and/or a membership (and, for a social sign-up, an
        organization): organization.created, user.created, user.organization_membership_created and
        user.signup, in that order, as applicable."""
        if new_org is not None:
            self.emit("organization.created", organization_json(new_org), organization_id=new_org.id)
        if new_user:
            self.emit("user.created", user_json(user), organization_id=organization_id)
        self.emit("user.organization_membership_created", membership_data(user, organization_id), organization_id=organization_id)
        if new_user and new_org is not None:
            self.emit("user.signup", signup_data(user, new_org), organization_id=new_org.id)

    # ---- views --------------------------------------------------------------------------------
    def recent_events(self, type: str | None = None) -> list[dict]:
        with self._lock:
            return [e for e in self.events if type is None or e["type"] == type]

    def delivery_log(self, **filters: str | None) -> list[dict]:
        with self._lock:
            rows = [d.public() for d in self.deliveries.values()]
        return [r for r in rows if all(v is None or r.get(k) == v for k, v in filters.items())]

    # ---- delivery -----------------------------------------------------------------------------
    def _ensure_thread(self) -> None:  # with the lock held
        if self._thread is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sk-webhook-post")
            self._thread = threading.Thread(target=self._run, name="sk-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    self._cond.wait(timeout=(self._due[0][0] - time.monotonic()) if self._due else None)
                if self._closed:
                    return
                _, _, delivery = heapq.heappop(self._due)
            try:
                self._pool.submit(self._attempt, delivery)
            except RuntimeError:  # pool shut down
                return

    def _attempt(self, delivery: Delivery) -> None:
        endpoint = delivery.endpoint
        headers = {"content-type": "application/json", "user-agent": "Scalekit-Local-Webhooks/1"}
        headers |= sign(endpoint.secret, delivery.event["id"], int(time.time()), delivery.body)
        status: int | None = None
        error = ""
        try:
            request = urllib.request.Request(endpoint.url, data=delivery.body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=endpoint.timeout_ms / 1000) as resp:
                status = resp.status
                resp.read(65536)
        except urllib.error.HTTPError as exc:
            status = exc.code
            error = f"HTTP {exc.code}"
        except Exception as exc:  # noqa: BLE001 - connection refused, timeout, TLS...: logged, retried
            error = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
        ok = status is not None and 200 <= status < 300
        with self._lock:
            delivery.attempts += 1
            delivery.status_codes.append(status)
            if error:
                delivery.errors.append(error)
            if ok:
                delivery.state, delivery.finished_at = "succeeded", time.time()
            elif delivery.attempts >= endpoint.max_attempts:
                delivery.state, delivery.finished_at = "failed", time.time()
            elif not self._closed:
                delays = endpoint.retry_delays_ms
                delay = delays[min(delivery.attempts - 1, len(delays) - 1)] / 1000
                heapq.heappush(self._due, (time.monotonic() + delay, next(self._seq), delivery))
                self._cond.notify()
        log.debug("webhook %s %s -> %s (attempt %d, %s)", delivery.event["type"], endpoint.url, status or error,
                  delivery.attempts, delivery.state)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cond.notify_all()
            pool = self._pool
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


# ---- admin routes -----------------------------------------------------------------------------------
def _bus(request):
    return request.app.state.ctx.store.events


async def _json_body(request) -> dict:
    try:
        body = loads_json(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")  # noqa: TRY004 - a 400 answer
    return body


def _bad(message: str, status: int = 400):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": "invalid_request", "error_description": message}, status_code=status)


async def list_endpoints(request):
    from starlette.responses import JSONResponse

    bus = _bus(request)
    with bus._lock:
        return JSONResponse({"endpoints": [e.public() for e in bus.endpoints.values()]})


async def add_endpoint(request):
    from starlette.responses import JSONResponse

    try:
        endpoint = _bus(request).add_endpoint(await _json_body(request))
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse(endpoint.public(), status_code=201)


async def delete_endpoint(request):
    from starlette.responses import Response

    if not _bus(request).remove_endpoint(request.path_params["endpoint_id"]):
        return _bad("no such webhook endpoint", 404)
    return Response(status_code=204)


async def list_deliveries(request):
    from starlette.responses import JSONResponse

    q = request.query_params
    rows = _bus(request).delivery_log(event_id=q.get("event_id"), type=q.get("type"), state=q.get("state"),
                                      endpoint_id=q.get("endpoint_id"))
    return JSONResponse({"deliveries": rows})


async def list_events(request):
    from starlette.responses import JSONResponse

    return JSONResponse({"events": _bus(request).recent_events(request.query_params.get("type"))})


async def post_event(request):
    from starlette.responses import JSONResponse

    try:
        body = await _json_body(request)
    except ValueError as exc:
        return _bad(str(exc))
    if not isinstance(body.get("type"), str) or not body["type"]:
        return _bad("type is required")
    if not isinstance(body.get("data", {}), dict):
        return _bad("data must be an object")
    event = _bus(request).emit(body["type"], body.get("data") or {}, organization_id=body.get("organization_id"),
                               object=body.get("object"))
    return JSONResponse(event, status_code=201)


def routes() -> list:
    from starlette.routing import Route

    return [
        Route("/_local/webhooks", list_endpoints),
        Route("/_local/webhooks", add_endpoint, methods=["POST"]),
        Route("/_local/webhooks/deliveries", list_deliveries),
        Route("/_local/webhooks/{endpoint_id}", delete_endpoint, methods=["DELETE"]),
        Route("/_local/events", list_events),
        Route("/_local/events", post_event, methods=["POST"]),
    ]
