"""Directory sync: the customer's directory (SCIM, through Scalekit) keeps the app's users current
with signed webhooks. Users are created, updated (name, groups, active) and deactivated; directory
groups map to the app's roles. A directory only manages users of its own organization's verified
domains, like SSO logins."""
from __future__ import annotations

import json
import os
import sqlite3
import time

import db
from sso import scalekit, verified_domains

WEBHOOK_SECRET = os.environ.get("SCALEKIT_WEBHOOK_SECRET", "")
# region roles
GROUP_ROLES = {"Admins": "admin"}  # directory group name -> app role; users in no mapped group are members


def role_for(groups: list[dict]) -> str:
    return "admin" if any(GROUP_ROLES.get(g.get("name")) == "admin" for g in groups) else "member"
# endregion roles


class WebhookRejected(Exception):
    pass


# region webhook
def verify(headers: dict[str, str], body: bytes) -> dict:
    """The event, if Scalekit signed exactly this body with our secret within the last 5 minutes."""
    try:
        # The SDK reads the headers webhook-id, webhook-timestamp and webhook-signature (lower case).
        scalekit().verify_webhook_payload(WEBHOOK_SECRET, {k.lower(): v for k, v in headers.items()}, body)
        return json.loads(body)
    except Exception:
        raise WebhookRejected("invalid webhook signature") from None


def handle(webhook_id: str, event: dict) -> str:
    """Apply one verified event once. A delivery whose webhook-id was seen before is not applied again."""
    scalekit_org = event.get("organization_id") or event.get("data", {}).get("organization_id")
    kind = event.get("type", "")
    verified = verified_domains(scalekit_org) if scalekit_org and kind.startswith("organization.directory.user_") \
        else set()
    with db.transaction() as conn:
        try:
            conn.execute("INSERT INTO webhook_events (id, received_at) VALUES (?, ?)", (webhook_id, int(time.time())))
        except sqlite3.IntegrityError:
            return "duplicate"
        org = conn.execute("SELECT * FROM organizations WHERE scalekit_organization_id = ?", (scalekit_org,)).fetchone()
        if org is None:
            return "applied"
        if kind in ("organization.directory.user_created", "organization.directory.user_updated"):
            apply_user(conn, org, event, deleted=False, verified=verified)
        elif kind == "organization.directory.user_deleted":
            apply_user(conn, org, event, deleted=True, verified=verified)
        elif kind in ("organization.directory.group_updated", "organization.directory.group_deleted"):
            apply_group(conn, org, event, deleted=kind.endswith("deleted"))
        return "applied"
# endregion webhook


# region apply_user
def apply_user(conn: sqlite3.Connection, org: sqlite3.Row, event: dict, *, deleted: bool, verified: set[str]) -> None:
    data = event.get("data", {})
    link = conn.execute("SELECT * FROM directory_users WHERE directory_user_id = ?", (data.get("id"),)).fetchone()
    if link is not None and link["updated_at"] > event.get("occurred_at", ""):
        return  # an older event delivered late
    user = conn.execute("SELECT * FROM users WHERE id = ?", (link["user_id"],)).fetchone() if link else None
    if user is None:
        email = (data.get("email") or "").strip().lower()
        if "@" not in email or email.rsplit("@", 1)[1] not in verified:
            return  # not a domain this organization owns
        user = conn.execute("SELECT * FROM users WHERE email = ?", (email,)).fetchone()
        if user is None:
            if deleted or not data.get("active", True):
                return
            user_id = conn.execute("INSERT INTO users (organization_id, email) VALUES (?, ?)", (org["id"], email)).lastrowid
            user = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        conn.execute("INSERT OR REPLACE INTO directory_users (directory_user_id, user_id) VALUES (?, ?)",
                     (data.get("id"), user["id"]))
    if user["organization_id"] != org["id"]:
        return  # another customer's user: never touched by this directory
    groups = [] if deleted else [{"id": g.get("id"), "name": g.get("name")} for g in data.get("groups") or []]
    active = not deleted and data.get("active", True) is not False
    name = data.get("name") or " ".join(p for p in (data.get("given_name"), data.get("family_name")) if p)
    conn.execute("UPDATE users SET name = coalesce(nullif(?, ''), name), role = ?, active = ? WHERE id = ?",
                 (name, role_for(groups), int(active), user["id"]))
    conn.execute("UPDATE directory_users SET groups = ?, updated_at = ? WHERE user_id = ?",
                 (json.dumps(groups), event.get("occurred_at", ""), user["id"]))
    if not active:
        conn.execute("DELETE FROM sessions WHERE user_id = ?", (user["id"],))  # access ends now
# endregion apply_user


def apply_group(conn: sqlite3.Connection, org: sqlite3.Row, event: dict, *, deleted: bool) -> None:
    """A renamed or deleted group changes the roles of the users in it."""
    data = event.get("data", {})
    rows = conn.execute("SELECT directory_users.* FROM directory_users JOIN users ON users.id = directory_users.user_id"
                        " WHERE users.organization_id = ?", (org["id"],)).fetchall()
    for row in rows:
        groups = json.loads(row["groups"])
        if not any(g["id"] == data.get("id") for g in groups):
            continue
        groups = [g for g in groups if g["id"] != data.get("id")] if deleted else \
            [{**g, "name": data.get("display_name", g["name"])} if g["id"] == data.get("id") else g for g in groups]
        conn.execute("UPDATE directory_users SET groups = ? WHERE user_id = ?", (json.dumps(groups), row["user_id"]))
        conn.execute("UPDATE users SET role = ? WHERE id = ?", (role_for(groups), row["user_id"]))
