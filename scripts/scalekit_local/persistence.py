"""Optional persistence of the store (`--persist`): SQLite in the data folder, one JSON document per object.

What is saved: organizations, users and memberships, connections, domains, directories (users and
groups), roles, organization roles, permissions, clients (with secrets added over the API),
organization settings, portal links, sessions, refresh tokens, revoked token families and token
ids. Login requests and authorization codes are short-lived and are not saved.

On start, a state file that already holds state replaces the seeded objects (the seed only fills a
new file). A background thread writes changed documents every FLUSH_INTERVAL seconds and once more
on a clean stop, so what changed in the last half second before a crash can be lost.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from . import records
from .store import Client, Connection, Membership, Organization, RefreshToken, Role, Session, User

log = logging.getLogger("scalekit_local.persistence")

STATE_FILE = "state.sqlite3"
FLUSH_INTERVAL = 0.5
NESTED = {
    (User, "memberships"): Membership,
    (records.Directory, "users"): records.DirectoryUser,
    (records.Directory, "groups"): records.DirectoryGroup,
}
# kind -> (store attribute, class); every attribute is a dict keyed by the object's id.
KINDS: dict[str, tuple[str, type]] = {
    "organization": ("organizations", Organization),
    "user": ("users", User),
    "connection": ("connections", Connection),
    "role": ("roles", Role),
    "client": ("clients", Client),
    "session": ("sessions", Session),
    "refresh_token": ("refresh_tokens", RefreshToken),
    "domain": ("domains", records.Domain),
    "directory": ("directories", records.Directory),
    "permission": ("permissions", records.Permission),
    "portal_link": ("portal_links", records.PortalLink),
    "org_settings": ("org_settings", records.OrgSettings),
}


def _build(cls: type, data: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in names:
            continue
        sub = NESTED.get((cls, key))
        values[key] = [_build(sub, v) for v in value] if sub else value
    return cls(**values)


def snapshot(store) -> dict[tuple[str, str], str]:
    """Every durable object as (kind, id) -> JSON text."""
    docs: dict[tuple[str, str], str] = {}
    with store.lock:
        for kind, (attr, _cls) in KINDS.items():
            for key, obj in getattr(store, attr, {}).items():
                docs[(kind, key)] = json.dumps(dataclasses.asdict(obj), sort_keys=True)
        for org_id, roles in getattr(store, "org_roles", {}).items():
            for name, role in roles.items():
                docs[("org_role", f"{org_id}/{name}")] = json.dumps(dataclasses.asdict(role), sort_keys=True)
        for family in store.revoked_families:
            docs[("revoked_family", family)] = "true"
        for jti in store.revoked_jtis:
            docs[("revoked_jti", jti)] = "true"
    return docs


def restore(store, rows: list[tuple[str, str, str]]) -> None:
    """Replace the store's durable objects with saved rows (kind, id, json)."""
    with store.lock:
        for attr, _cls in KINDS.values():
            setattr(store, attr, {})
        store.org_roles = {}
        store.revoked_families = set()
        store.revoked_jtis = set()
        for kind, key, doc in rows:
            if kind in KINDS:
                attr, cls = KINDS[kind]
                getattr(store, attr)[key] = _build(cls, json.loads(doc))
            elif kind == "org_role":
                role = _build(Role, json.loads(doc))
                store.org_roles.setdefault(role.organization_id, {})[role.name] = role
            elif kind == "revoked_family":
                store.revoked_families.add(key)
            elif kind == "revoked_jti":
                store.revoked_jtis.add(key)


class Persister:
    def __init__(self, path: Path, store):
        self.path = Path(path)
        self.store = store
        self._saved: dict[tuple[str, str], str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        db = self._connect()
        db.execute("CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,"
                   " PRIMARY KEY (kind, id))")
        db.commit()
        db.close()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def load(self) -> bool:
        """Restore saved state into the store; False (and the seed is saved) when the file is new."""
        db = self._connect()
        rows = db.execute("SELECT kind, id, doc FROM objects").fetchall()
        db.close()
        if not rows:
            self.flush()
            return False
        restore(self.store, rows)
        self._saved = {(k, i): d for k, i, d in rows}
        return True

    def flush(self) -> int:
        """Write what changed since the last flush; returns the number of rows written or deleted."""
        with self._write_lock:
            current = snapshot(self.store)
            changed = [(k, i, d) for (k, i), d in current.items() if self._saved.get((k, i)) != d]
            gone = [key for key in self._saved if key not in current]
            if not changed and not gone:
                return 0
            db = self._connect()
            with db:
                db.executemany("INSERT OR REPLACE INTO objects (kind, id, doc) VALUES (?, ?, ?)", changed)
                db.executemany("DELETE FROM objects WHERE kind = ? AND id = ?", gone)
            db.close()
            self._saved = current
            return len(changed) + len(gone)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            try:
                self.flush()
            except Exception:  # keep serving; the next flush retries
                log.exception("saving state to %s failed", self.path)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sk-persist", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()
