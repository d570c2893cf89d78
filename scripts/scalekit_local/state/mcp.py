"""The MCP authorization server's state: the seed's resources (MCP servers) and their clients, the
clients registered at run time (dynamic registration, metadata documents, CreateResourceClient),
authorization requests waiting for a login or consent, and issued codes. store.mcp holds it; it has
its own lock. Nothing of it is saved by --persist (consents are, in store.consents).
"""
from __future__ import annotations

import threading
import time
from collections import deque

from .records import MCP_PENDING_TTL, McpClient, McpCode, Pending, Resource

CODE_REPLAY_WINDOW = 600  # a used or expired code is remembered this long, to catch replays


class McpState:
    def __init__(self, raw_resources: list[dict]):
        self.lock = threading.RLock()
        self.resources: dict[str, Resource] = {}
        for r in raw_resources:
            custom = r.get("custom_auth") or {}
            self.resources[r["id"]] = Resource(
                id=r["id"], name=r.get("name", r["id"]), urls=list(r["urls"]), scopes=list(r.get("scopes", [])),
                dcr=r.get("dynamic_client_registration", True), cimd=r.get("client_id_metadata_documents", True),
                token_issuer=r.get("token_issuer", "environment"), login_url=custom.get("login_url"),
                connection_id=custom.get("connection_id"), state_ttl=int(custom.get("state_ttl", MCP_PENDING_TTL)),
            )
        self.clients: dict[str, McpClient] = {}
        for r in raw_resources:  # static clients of the seed (ClientService resource clients)
            for c in r.get("clients", []):
                self.clients[c["id"]] = McpClient(
                    id=c["id"], resource_id=r["id"], redirect_uris=list(c.get("redirect_uris", [])),
                    name=c.get("name", ""), auth_method="client_secret_basic", scopes=list(c.get("scopes", [])),
                    secrets=[{"id": f"sks_{c['id'].split('_', 1)[1]}", "secret": c["secret"], "created_at": time.time()}])
        self.pending: dict[str, Pending] = {}
        self.codes: dict[str, McpCode] = {}
        # Expiry queues (oldest first) and lookups, so that nothing scans all pending requests or codes.
        self._pending_queue: deque[tuple[float, str]] = deque()
        self._code_queue: deque[tuple[float, str]] = deque()
        self._by_login_request: dict[str, str] = {}
        self._by_bridge_state: dict[str, str] = {}
        self.families: dict[str, tuple[str, str]] = {}  # refresh family -> (resource id, resource URL)

    def resource_for_url(self, url: str, cimd_only: bool = False) -> Resource | None:
        return next((r for r in self.resources.values() if url in r.urls and (r.cimd or not cimd_only)), None)

    def add_pending(self, p: Pending) -> None:
        with self.lock:
            t = time.time()
            while self._pending_queue and self._pending_queue[0][0] < t - MCP_PENDING_TTL:
                self.finish(self._pending_queue.popleft()[1])
            self.pending[p.id] = p
            self._pending_queue.append((p.expires_at, p.id))
            if p.login_request_id:
                self._by_login_request[p.login_request_id] = p.id
            if p.bridge_state:
                self._by_bridge_state[p.bridge_state] = p.id

    def add_code(self, code: McpCode) -> None:
        with self.lock:
            t = time.time()
            while self._code_queue and self._code_queue[0][0] < t - CODE_REPLAY_WINDOW:
                self.codes.pop(self._code_queue.popleft()[1], None)
            self.codes[code.code] = code
            self._code_queue.append((code.expires_at, code.code))

    def get_pending(self, pending_id: str | None) -> Pending | None:
        with self.lock:
            p = self.pending.get(pending_id or "")
            return p if p and p.expires_at >= time.time() else None

    def by_login_request(self, login_request_id: str) -> Pending | None:
        with self.lock:
            return self.pending.get(self._by_login_request.get(login_request_id, ""))

    def by_bridge_state(self, bridge_state: str) -> Pending | None:
        with self.lock:
            return self.pending.get(self._by_bridge_state.get(bridge_state, ""))

    def finish(self, pending_id: str) -> None:
        with self.lock:
            p = self.pending.pop(pending_id, None)
            if p is not None:
                self._by_login_request.pop(p.login_request_id or "", None)
                self._by_bridge_state.pop(p.bridge_state or "", None)

    def take_code(self, code: str) -> tuple[McpCode | None, str]:
        with self.lock:
            entry = self.codes.get(code)
            if entry is None:
                return None, "unknown"
            if entry.used:
                return entry, "used"
            entry.used = True
            return (entry, "expired") if entry.expires_at < time.time() else (entry, "")
