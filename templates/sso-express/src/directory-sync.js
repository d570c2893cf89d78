// Directory sync: the customer's directory (SCIM, through Scalekit) keeps the app's users current
// with signed webhooks. Users are created, updated (name, groups, active) and deactivated; directory
// groups map to the app's roles. A directory only manages users of its own organization's verified
// domains, like SSO logins.
import { db, transaction } from "./db.js";
import { scalekit, verifiedDomains } from "./sso.js";

const WEBHOOK_SECRET = process.env.SCALEKIT_WEBHOOK_SECRET || "";
// region roles
const GROUP_ROLES = { Admins: "admin" }; // directory group name -> app role; users in no mapped group are members

const roleFor = (groups) => (groups.some((g) => GROUP_ROLES[g.name] === "admin") ? "admin" : "member");
// endregion roles

export class WebhookRejected extends Error {}

// region webhook
// The event, if Scalekit signed exactly this body with our secret within the last 5 minutes.
export function verify(headers, rawBody) {
  try {
    // The SDK reads the headers webhook-id, webhook-timestamp and webhook-signature (lower case).
    scalekit().verifyWebhookPayload(WEBHOOK_SECRET, headers, rawBody);
    return JSON.parse(rawBody);
  } catch {
    throw new WebhookRejected("invalid webhook signature");
  }
}

// Applies one verified event once. A delivery whose webhook-id was seen before is not applied again.
export async function handle(webhookId, event) {
  const org = db.get("SELECT * FROM organizations WHERE scalekit_organization_id = ?",
    [event.organization_id ?? event.data?.organization_id ?? null]);
  const verified = org && event.type?.startsWith("organization.directory.user_")
    ? await verifiedDomains(org.scalekit_organization_id) : new Set();
  return transaction(() => { // no await below: the whole event applies at once
    if (db.get("SELECT 1 AS seen FROM webhook_events WHERE id = ?", [webhookId])) return "duplicate";
    db.run("INSERT INTO webhook_events (id, received_at) VALUES (?, ?)", [webhookId, Math.floor(Date.now() / 1000)]);
    if (!org) return "applied";
    if (event.type === "organization.directory.user_created" || event.type === "organization.directory.user_updated") {
      applyUser(org, event, { deleted: false, verified });
    } else if (event.type === "organization.directory.user_deleted") {
      applyUser(org, event, { deleted: true, verified });
    } else if (event.type === "organization.directory.group_updated" || event.type === "organization.directory.group_deleted") {
      applyGroup(org, event, { deleted: event.type.endsWith("deleted") });
    }
    return "applied";
  });
}
// endregion webhook

// region apply_user
function applyUser(org, event, { deleted, verified }) {
  const data = event.data ?? {};
  const occurredAt = event.occurred_at ?? "";
  const link = db.get("SELECT * FROM directory_users WHERE directory_user_id = ?", [data.id ?? null]);
  if (link && link.updated_at > occurredAt) return; // an older event delivered late
  let user = link ? db.get("SELECT * FROM users WHERE id = ?", [link.user_id]) : null;
  if (!user) {
    const email = (data.email ?? "").trim().toLowerCase();
    if (!email.includes("@") || !verified.has(email.split("@")[1])) return; // not a domain this organization owns
    user = db.get("SELECT * FROM users WHERE email = ?", [email]);
    if (!user) {
      if (deleted || data.active === false) return;
      const { lastInsertRowid } = db.run("INSERT INTO users (organization_id, email) VALUES (?, ?)", [org.id, email]);
      user = db.get("SELECT * FROM users WHERE id = ?", [lastInsertRowid]);
    }
    db.run("INSERT OR REPLACE INTO directory_users (directory_user_id, user_id) VALUES (?, ?)", [data.id, user.id]);
  }
  if (user.organization_id !== org.id) return; // another customer's user: never touched by this directory
  const groups = deleted ? [] : (data.groups ?? []).map((g) => ({ id: g.id, name: g.name }));
  const active = !deleted && data.active !== false;
  const name = data.name || [data.given_name, data.family_name].filter(Boolean).join(" ");
  db.run("UPDATE users SET name = coalesce(nullif(?, ''), name), role = ?, active = ? WHERE id = ?",
    [name, roleFor(groups), active ? 1 : 0, user.id]);
  db.run("UPDATE directory_users SET groups = ?, updated_at = ? WHERE user_id = ?",
    [JSON.stringify(groups), occurredAt, user.id]);
  if (!active) db.run("DELETE FROM sessions WHERE user_id = ?", [user.id]); // access ends now
}
// endregion apply_user

// A renamed or deleted group changes the roles of the users in it.
function applyGroup(org, event, { deleted }) {
  const data = event.data ?? {};
  const rows = db.all("SELECT directory_users.* FROM directory_users JOIN users ON users.id = directory_users.user_id" +
    " WHERE users.organization_id = ?", [org.id]);
  for (const row of rows) {
    let groups = JSON.parse(row.groups);
    if (!groups.some((g) => g.id === data.id)) continue;
    groups = deleted ? groups.filter((g) => g.id !== data.id)
      : groups.map((g) => (g.id === data.id ? { ...g, name: data.display_name ?? g.name } : g));
    db.run("UPDATE directory_users SET groups = ? WHERE user_id = ?", [JSON.stringify(groups), row.user_id]);
    db.run("UPDATE users SET role = ? WHERE id = ?", [roleFor(groups), row.user_id]);
  }
}
