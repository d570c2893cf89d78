"""Optional persistence of the store (`--persist`): SQLite in the data folder, one JSON document per object.

What is saved: organizations, users and memberships, connections, domains, directories (users and
groups), roles, organization roles, permissions, clients (with secrets added over the API),
organization settings, portal links, API keys (their digests), passkeys, MCP consents, environment
connections and settings, sessions, refresh tokens, revoked token families and token ids. Login
requests, authorization codes, passwordless requests and the mailbox are short-lived and are not
saved; nor are MCP clients registered at run time.

On start, a state file that already holds state replaces the seeded objects (the seed only fills a
new file). A background thread starts a save every FLUSH_INTERVAL seconds and once more on a clean
stop. Runtime objects (sessions, refresh tokens, revocations), which grow with every login, are
saved from the store's journal of what changed, so a save costs what changed, not the size of the
state. Management objects (organizations, users, roles...) are compared with the last save, but only
after something may have changed them (store.management_changed()): a gRPC call other than
Get/List/Search (services/grpc_server.py, ChangeInterceptor), an HTTP request that is not a read
outside the OAuth endpoints (endpoints/app.py, ChangeMarker), or a user provisioned at login. A crash (even `kill -9`) loses at most what was acknowledged in the last half second. The file is created readable by its owner only
(mode 0600): it holds client secrets, passwords and live refresh tokens.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .records import (ApiToken, Client, Connection, Consent, Directory, DirectoryGroup, DirectoryUser, Domain,
                      EnvConnection, EnvSettings, Membership, Organization, OrgSettings, Passkey, Permission,
                      PortalLink, RefreshToken, Role, Session, User)

log = logging.getLogger("scalekit_local.persistence")

STATE_FILE = "state.sqlite3"
FLUSH_INTERVAL = 0.25  # a save starts this often; with a save's own time, within the 0.5 s promise
NESTED = {
    (User, "memberships"): Membership,
    (Directory, "users"): DirectoryUser,
    (Directory, "groups"): DirectoryGroup,
}
# Saved from the store's journal (store.journal: (kind, id) of what changed); they grow with logins.
JOURNALED: dict[str, tuple[str, type]] = {
    "session": ("sessions", Session),
    "refresh_token": ("refresh_tokens", RefreshToken),
}
JOURNALED_SETS = {"revoked_family": "revoked_families", "revoked_jti": "revoked_jtis"}
# kind -> (store attribute, class); every attribute is a dict keyed by the object's id.
KINDS: dict[str, tuple[str, type]] = {
    **JOURNALED,
    "organization": ("organizations", Organization),
    "user": ("users", User),
    "connection": ("connections", Connection),
    "role": ("roles", Role),
    "client": ("clients", Client),
    "domain": ("domains", Domain),
    "directory": ("directories", Directory),
    "permission": ("permissions", Permission),
    "portal_link": ("portal_links", PortalLink),
    "org_settings": ("org_settings", OrgSettings),
    "api_token": ("api_tokens", ApiToken),
    "passkey": ("passkeys", Passkey),
    "consent": ("consents", Consent),
    "env_connection": ("env_connections", EnvConnection),
    "env_settings": ("env_settings", EnvSettings),
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


def _plain(obj):
    return obj.__dict__  # dataclasses nested in lists (memberships, directory users); faster than asdict


def _doc(obj) -> str:
    return json.dumps(obj, default=_plain, sort_keys=True)


def snapshot(store, journaled: bool = True) -> dict[tuple[str, str], str]:
    """Every durable object as (kind, id) -> JSON text (without the journaled kinds: journaled=False)."""
    docs: dict[tuple[str, str], str] = {}
    with store.lock:
        items = [((kind, key), obj) for kind, (attr, _cls) in KINDS.items() if journaled or kind not in JOURNALED
                 for key, obj in getattr(store, attr).items()]
        items += [(("org_role", f"{org_id}/{name}"), role)
                  for org_id, roles in store.org_roles.items() for name, role in roles.items()]
        if journaled:
            for kind, attr in JOURNALED_SETS.items():
                docs.update(((kind, key), "true") for key in getattr(store, attr))
    # Serialise in slices, letting logins take the lock in between: a large state must not stall them.
    for start in range(0, len(items), 200):
        with store.lock:
            docs.update((key, _doc(obj)) for key, obj in items[start:start + 200])
    return docs


def journal_changes(store) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(rows to write, (kind, id) rows to delete) for what the store's journal names; empties it."""
    write, delete = [], []
    with store.lock:
        changed, store.journal = store.journal, set()
        for kind, key in changed:
            if kind in JOURNALED:
                obj = getattr(store, JOURNALED[kind][0]).get(key)
                doc = _doc(obj) if obj is not None else None
            else:
                doc = "true" if key in getattr(store, JOURNALED_SETS[kind]) else None
            if doc is None:
                delete.append((kind, key))
            else:
                write.append((kind, key, doc))
    return write, delete


def restore(store, rows: list[tuple[str, str, str]]) -> None:
    """Replace the store's durable objects with saved rows (kind, id, json)."""
    with store.lock:
        seeded_settings = dict(store.env_settings)  # a file saved before settings existed keeps the seed's
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
        for key, settings in seeded_settings.items():
            store.env_settings.setdefault(key, settings)
    store.rebuild_indexes()


class Persister:
    def __init__(self, path: Path, store):
        self.path = Path(path)
        self.store = store
        self._saved: dict[tuple[str, str], str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._db: sqlite3.Connection | None = None  # used by the saving thread only (and at stop)
        db = self._connect()
        db.execute("CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,"
                   " PRIMARY KEY (kind, id))")
        db.commit()
        db.close()

    def _connect(self) -> sqlite3.Connection:
        # Create the file (and so its -wal and -shm companions, which SQLite gives the same mode)
        # readable by its owner only, and tighten a file an older version left world-readable.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        for path in (self.path, self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
            if path.exists() and path.stat().st_mode & 0o077:
                path.chmod(0o600)
        db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)  # calls are serialised by _write_lock
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # durable across a crash of this process (kill -9)
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
        self._saved = {(k, i): d for k, i, d in rows if k not in JOURNALED and k not in JOURNALED_SETS}
        return True

    def flush(self) -> int:
        """Write what changed since the last flush; returns the number of rows written or deleted."""
        with self._write_lock:
            write, delete = journal_changes(self.store)
            current = self._saved
            if self.store.management_dirty:
                self.store.management_dirty = False
                current = snapshot(self.store, journaled=False)
                write += [(k, i, d) for (k, i), d in current.items() if self._saved.get((k, i)) != d]
                delete += [key for key in self._saved if key not in current]
            if not write and not delete:
                return 0
            if self._db is None:
                self._db = self._connect()
            try:
                with self._db:
                    self._db.executemany("INSERT OR REPLACE INTO objects (kind, id, doc) VALUES (?, ?, ?)", write)
                    self._db.executemany("DELETE FROM objects WHERE kind = ? AND id = ?", delete)
            except sqlite3.Error:
                with self.store.lock:  # save these again next time
                    self.store.management_dirty = True
                    self.store.journal.update((k, i) for k, i, _ in write if k in JOURNALED or k in JOURNALED_SETS)
                    self.store.journal.update(key for key in delete if key[0] in JOURNALED or key[0] in JOURNALED_SETS)
                raise
            self._saved = current
            return len(write) + len(delete)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.flush()
            except Exception:  # keep serving; the next flush retries
                log.exception("saving state to %s failed", self.path)
            self._stop.wait(max(0.0, FLUSH_INTERVAL - (time.monotonic() - started)))

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
        if self._db is not None:
            self._db.close()
            self._db = None
