// The app's own SQLite database (node-sqlite3-wasm: SQLite compiled to WebAssembly, writing a real
// database file, no native build). The first tables are what the app had before SSO; the last four
// are what SSO adds. A new database gets demo data matching the local Scalekit environment's seed.
import { createHash, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import sqlite from "node-sqlite3-wasm";

const DATABASE_PATH = process.env.DATABASE_PATH || "app.sqlite3";

const SCHEMA = `
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
`;

const DEMO_ORGANIZATIONS = [ // slug, name, Scalekit organization id (the local environment's seed)
  ["acme", "Acme Inc", "org_70000000000001001"],
  ["globex", "Globex Corporation", "org_70000000000001002"],
  ["initech", "Initech", null],
];
const DEMO_USERS = [ // email, name, password, organization slug, role
  ["alice@acme.test", "Alice Anders", "alice-app-password", "acme", "admin"],
  ["carol@globex.test", "Carol Chen", "carol-app-password", "globex", "admin"],
  ["pat@initech.test", "Pat Parker", "pat-app-password", "initech", "admin"],
];
const DEMO_PROJECTS = [["acme", "Rocket skates"], ["globex", "Hammock district"], ["initech", "TPS reports"]];

export function hashPassword(password, salt = randomBytes(16)) {
  const digest = scryptSync(password, salt, 32, { N: 16384, r: 8, p: 1 });
  return `scrypt$${salt.toString("hex")}$${digest.toString("hex")}`;
}

export function passwordMatches(password, stored) {
  if (!stored) return false;
  const expected = Buffer.from(hashPassword(password, Buffer.from(stored.split("$")[1], "hex")));
  return expected.length === stored.length && timingSafeEqual(expected, Buffer.from(stored));
}

mkdirSync(dirname(DATABASE_PATH), { recursive: true });
export const db = new sqlite.Database(DATABASE_PATH);
db.exec("PRAGMA foreign_keys = ON;" + SCHEMA);

// Runs fn inside BEGIN/COMMIT. The driver is synchronous: keep `await` out of fn, so no other
// request's statements run in the middle of the transaction.
export function transaction(fn) {
  db.exec("BEGIN");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}

if (db.get("SELECT count(*) AS n FROM organizations").n === 0) {
  transaction(() => {
    for (const org of DEMO_ORGANIZATIONS) {
      db.run("INSERT INTO organizations (slug, name, scalekit_organization_id) VALUES (?, ?, ?)", org);
    }
    for (const [email, name, password, org, role] of DEMO_USERS) {
      db.run("INSERT INTO users (organization_id, email, name, password_hash, role) " +
        "SELECT id, ?, ?, ?, ? FROM organizations WHERE slug = ?", [email, name, hashPassword(password), role, org]);
    }
    for (const [org, project] of DEMO_PROJECTS) {
      db.run("INSERT INTO projects (organization_id, name) SELECT id, ? FROM organizations WHERE slug = ?", [project, org]);
    }
  });
}

// ---- sessions: the app's own, for password and SSO users alike ----------------------------------
export const SESSION_TTL = 8 * 3600;
const tokenHash = (token) => createHash("sha256").update(token).digest("hex");
const now = () => Math.floor(Date.now() / 1000);

export function createSession(userId) {
  const token = randomBytes(32).toString("base64url");
  db.run("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?, ?, ?)", [tokenHash(token), userId, now() + SESSION_TTL]);
  return token;
}

// The active user of a session cookie, or null. Deactivated users have no session.
export function sessionUser(token) {
  if (!token) return null;
  return db.get(
    "SELECT users.*, organizations.slug AS org_slug, organizations.name AS org_name," +
    " organizations.scalekit_organization_id FROM sessions" +
    " JOIN users ON users.id = sessions.user_id JOIN organizations ON organizations.id = users.organization_id" +
    " WHERE sessions.token_hash = ? AND sessions.expires_at > ? AND users.active = 1", [tokenHash(token), now()]);
}

export function endSession(token) {
  if (token) db.run("DELETE FROM sessions WHERE token_hash = ?", [tokenHash(token)]);
}
