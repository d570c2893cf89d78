"""The app's own SQLite database.

The first tables are what the app had before SSO: organizations (its customers), users with
passwords, sessions and each organization's projects. The last four are what SSO adds. A new
database gets demo data matching the local Scalekit environment's seed.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

DATABASE_PATH = os.environ.get("DATABASE_PATH", "app.sqlite3")

SCHEMA = """
CREATE TABLE IF NOT EXISTS organizations (
  id INTEGER PRIMARY KEY,
  slug TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  scalekit_organization_id TEXT UNIQUE      -- set once the customer uses SSO
);
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY,
  organization_id INTEGER NOT NULL REFERENCES organizations(id),
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  name TEXT NOT NULL DEFAULT '',
  password_hash TEXT,                       -- NULL for users who only sign in with SSO
  role TEXT NOT NULL DEFAULT 'member',      -- 'admin' or 'member'
  active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY,              -- SHA-256 of the cookie value
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
  id INTEGER PRIMARY KEY,
  organization_id INTEGER NOT NULL REFERENCES organizations(id),
  name TEXT NOT NULL
);
-- region sso_tables
-- Added for SSO.
CREATE TABLE IF NOT EXISTS sso_identities (  -- an IdP account: its connection and the IdP's subject
  connection_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  PRIMARY KEY (connection_id, subject)
);
CREATE TABLE IF NOT EXISTS sso_logins (      -- SP-initiated logins on their way to the IdP
  state TEXT PRIMARY KEY,
  code_verifier TEXT NOT NULL,
  nonce TEXT NOT NULL,                      -- must come back in the ID token
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS directory_users ( -- users kept in sync by the customer's directory (SCIM)
  directory_user_id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
  groups TEXT NOT NULL DEFAULT '[]',        -- JSON [{"id", "name"}]
  updated_at TEXT NOT NULL DEFAULT ''       -- occurred_at of the last event applied
);
CREATE TABLE IF NOT EXISTS webhook_events (  -- webhook-id of every delivery applied (replay guard)
  id TEXT PRIMARY KEY,
  received_at INTEGER NOT NULL
);
-- endregion sso_tables
"""

DEMO_ORGANIZATIONS = [  # slug, name, Scalekit organization id (the local environment's seed)
    ("acme", "Acme Inc", "org_70000000000001001"),
    ("globex", "Globex Corporation", "org_70000000000001002"),
    ("initech", "Initech", None),
]
DEMO_USERS = [  # email, name, password, organization slug, role
    ("alice@acme.test", "Alice Anders", "alice-app-password", "acme", "admin"),
    ("carol@globex.test", "Carol Chen", "carol-app-password", "globex", "admin"),
    ("pat@initech.test", "Pat Parker", "pat-app-password", "initech", "admin"),
]
DEMO_PROJECTS = [("acme", "Rocket skates"), ("globex", "Hammock district"), ("initech", "TPS reports")]


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=16384, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    _, salt, _ = stored.split("$")
    return secrets.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)


def connect() -> sqlite3.Connection:
    conn = sqlite3.connect(DATABASE_PATH, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def transaction():
    """A connection whose changes are committed when the block ends without an exception."""
    conn = connect()
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def init() -> None:
    Path(DATABASE_PATH).parent.mkdir(parents=True, exist_ok=True)
    with transaction() as conn:
        conn.executescript(SCHEMA)
        if conn.execute("SELECT count(*) FROM organizations").fetchone()[0]:
            return
        conn.executemany("INSERT INTO organizations (slug, name, scalekit_organization_id) VALUES (?, ?, ?)",
                         DEMO_ORGANIZATIONS)
        for email, name, password, org, role in DEMO_USERS:
            conn.execute("INSERT INTO users (organization_id, email, name, password_hash, role) "
                         "SELECT id, ?, ?, ?, ? FROM organizations WHERE slug = ?",
                         (email, name, hash_password(password), role, org))
        for org, project in DEMO_PROJECTS:
            conn.execute("INSERT INTO projects (organization_id, name) SELECT id, ? FROM organizations WHERE slug = ?",
                         (project, org))


# ---- sessions: the app's own, for password and SSO users alike ---------------------------------
SESSION_TTL = 8 * 3600


def create_session(conn: sqlite3.Connection, user_id: int) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?, ?, ?)",
                 (hashlib.sha256(token.encode()).hexdigest(), user_id, int(time.time()) + SESSION_TTL))
    return token


def session_user(token: str | None) -> sqlite3.Row | None:
    """The active user of a session cookie, or None. Deactivated users have no session."""
    if not token:
        return None
    with transaction() as conn:
        return conn.execute(
            "SELECT users.*, organizations.slug AS org_slug, organizations.name AS org_name,"
            " organizations.scalekit_organization_id FROM sessions"
            " JOIN users ON users.id = sessions.user_id JOIN organizations ON organizations.id = users.organization_id"
            " WHERE sessions.token_hash = ? AND sessions.expires_at > ? AND users.active = 1",
            (hashlib.sha256(token.encode()).hexdigest(), int(time.time()))).fetchone()


def end_session(token: str | None) -> None:
    if token:
        with transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (hashlib.sha256(token.encode()).hexdigest(),))
