// A small multi-tenant app with its own users, password login and sessions, plus enterprise SSO
// (sso.js) and directory sync (directory-sync.js) through Scalekit.
import express from "express";
import { createSession, db, endSession, passwordMatches, SESSION_TTL, sessionUser } from "./db.js";
import * as directorySync from "./directory-sync.js";
import * as sso from "./sso.js";

const SECURE_COOKIES = sso.APP_URL.startsWith("https://");
const SESSION_COOKIE = "session";
const STATE_COOKIE = "sso_state";
const cookieOptions = { httpOnly: true, sameSite: "lax", secure: SECURE_COOKIES, path: "/" };

export const app = express();
app.disable("x-powered-by");

const escape = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function cookies(req) {
  const out = {};
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at > 0) out[part.slice(0, at).trim()] = decodeURIComponent(part.slice(at + 1).trim());
  }
  return out;
}

const currentUser = (req) => sessionUser(cookies(req)[SESSION_COOKIE]);

// Forms post only from this app's own pages (the webhook is checked by its signature instead).
app.use((req, res, next) => {
  const origin = req.headers.origin;
  if (req.method === "POST" && req.path !== "/webhooks/scalekit" && origin && origin !== new URL(sso.APP_URL).origin) {
    return page(res, "Forbidden", "<p>Cross-site form posts are not accepted.</p>", 403);
  }
  next();
});

function page(res, title, body, status = 200) {
  res.status(status).set("Cache-Control", "no-store").type("html").send(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>` +
    "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}" +
    "input,button{font:inherit;padding:.4rem;margin:.2rem 0}.error{color:#b00020}</style></head>" +
    `<body><h1>${escape(title)}</h1>${body}</body></html>`);
}

const errorLine = (message) => (message ? `<p class="error">${escape(message)}</p>` : "");

const emailForm = (res, message = "", status = 200) => page(res, "Sign in", errorLine(message) +
  '<form method="post" action="/login"><label>Work email <input type="email" name="email" id="email" required' +
  ' autofocus></label> <button id="continue">Continue</button></form>', status);

const passwordForm = (res, email, message = "", status = 200) => page(res, "Sign in", errorLine(message) +
  `<form method="post" action="/login/password"><input type="email" name="email" id="email" value="${escape(email)}"` +
  ' required><label>Password <input type="password" name="password" id="password" required autofocus></label>' +
  ' <button id="sign-in">Sign in</button></form>', status);

function signedIn(res, userId) {
  res.cookie(SESSION_COOKIE, createSession(userId), { ...cookieOptions, maxAge: SESSION_TTL * 1000 });
  res.clearCookie(STATE_COOKIE, cookieOptions);
  res.redirect(303, "/dashboard");
}

function toIdentityProvider(res, { url, state }) {
  res.cookie(STATE_COOKIE, state, { ...cookieOptions, maxAge: sso.LOGIN_TTL * 1000 });
  res.redirect(302, url);
}

const form = express.urlencoded({ extended: false });

// ---- the login the app always had, now asking for the email first ----------------------------
app.get("/", (req, res) => res.redirect(302, currentUser(req) ? "/dashboard" : "/login"));

app.get("/login", async (req, res) => {
  const { idp_initiated_login: idpInitiatedLogin, error, error_description: description } = req.query;
  if (idpInitiatedLogin) { // this is the initiate-login URL registered in the Scalekit dashboard
    try {
      return toIdentityProvider(res, await sso.startIdpInitiatedLogin(String(idpInitiatedLogin)));
    } catch (err) {
      if (err instanceof sso.SSOError) return emailForm(res, err.message, err.status);
      throw err;
    }
  }
  if (error) return emailForm(res, `Single sign-on failed: ${description || error}`, 400);
  emailForm(res);
});

// region home_realm_discovery
// Step 1: the email decides. SSO domains go to their identity provider, everyone else to a password.
app.post("/login", form, async (req, res) => {
  const email = String(req.body?.email ?? "").trim().toLowerCase();
  if (!email.includes("@")) return emailForm(res, "Enter your work email address.", 400);
  try {
    if (await sso.hasSso(email)) return res.redirect(303, `/auth/sso?email=${encodeURIComponent(email)}`);
  } catch (err) {
    if (err instanceof sso.SSOError) return passwordForm(res, email, err.message); // Scalekit is down: a password still works
    throw err;
  }
  passwordForm(res, email);
});
// endregion home_realm_discovery

app.post("/login/password", form, (req, res) => {
  const email = String(req.body?.email ?? "").trim();
  const user = db.get("SELECT * FROM users WHERE email = ? AND active = 1", [email]);
  if (!user || !passwordMatches(String(req.body?.password ?? ""), user.password_hash)) {
    return passwordForm(res, email, "Incorrect email or password.", 401);
  }
  signedIn(res, user.id);
});

app.post("/logout", (req, res) => {
  endSession(cookies(req)[SESSION_COOKIE]);
  res.clearCookie(SESSION_COOKIE, cookieOptions);
  res.redirect(303, "/login");
});

// ---- enterprise SSO ----------------------------------------------------------------------------
// region sso_routes
// Start an SSO login for an email (its domain picks the connection) or for an organization slug.
app.get("/auth/sso", async (req, res) => {
  const { email, org } = req.query;
  if (org) {
    const row = db.get("SELECT scalekit_organization_id FROM organizations WHERE slug = ?", [String(org)]);
    if (!row?.scalekit_organization_id) return emailForm(res, "This organization does not use single sign-on.", 404);
    return toIdentityProvider(res, sso.startLogin({ organizationId: row.scalekit_organization_id }));
  }
  try {
    if (typeof email !== "string" || !email.includes("@") || !(await sso.hasSso(email))) {
      return emailForm(res, "Single sign-on is not set up for this email domain.", 400);
    }
  } catch (err) {
    if (err instanceof sso.SSOError) return emailForm(res, err.message, err.status); // Scalekit is down (503)
    throw err;
  }
  toIdentityProvider(res, sso.startLogin({ email: email.trim().toLowerCase() }));
});

app.get("/auth/callback", async (req, res) => {
  const { code, state, error, error_description: description } = req.query;
  if (error) return emailForm(res, `Single sign-on failed: ${description || error}`, 400);
  try {
    const userId = await sso.finishLogin({ code: typeof code === "string" ? code : undefined,
      state: typeof state === "string" ? state : undefined, cookieState: cookies(req)[STATE_COOKIE] });
    signedIn(res, userId);
  } catch (err) {
    if (err instanceof sso.SSOError) return emailForm(res, err.message, err.status);
    throw err;
  }
});
// endregion sso_routes

// ---- the app -------------------------------------------------------------------------------------
app.get("/dashboard", (req, res) => {
  const user = currentUser(req);
  if (!user) return res.redirect(302, "/login");
  const items = db.all("SELECT name FROM projects WHERE organization_id = ?", [user.organization_id])
    .map((p) => `<li>${escape(p.name)}</li>`).join("");
  const admin = user.role === "admin" ? '<p><a href="/admin" id="admin">Organization settings</a></p>' : "";
  page(res, user.org_name, `<p id="who">Signed in as ${escape(user.email)} (${user.role})</p>` +
    `<ul id="projects">${items}</ul>${admin}` +
    '<form method="post" action="/logout"><button id="logout">Sign out</button></form>');
});

app.get("/api/me", (req, res) => {
  const user = currentUser(req);
  if (!user) return res.status(401).json({ error: "not signed in" });
  res.json({ id: user.id, email: user.email, name: user.name, role: user.role, organization: user.org_slug });
});

app.get("/api/orgs/:slug/projects", (req, res) => {
  const user = currentUser(req);
  if (!user) return res.status(401).json({ error: "not signed in" });
  if (user.org_slug !== req.params.slug) return res.status(404).json({ error: "not found" }); // one tenant never sees another's data
  res.json({ organization: user.org_slug,
    projects: db.all("SELECT id, name FROM projects WHERE organization_id = ?", [user.organization_id]) });
});

function orgAdmin(req) {
  const user = currentUser(req);
  return user?.role === "admin" ? user : null;
}

app.get("/api/orgs/:slug/users", (req, res) => {
  const user = orgAdmin(req);
  if (!user) return res.status(403).json({ error: "organization admins only" });
  if (user.org_slug !== req.params.slug) return res.status(404).json({ error: "not found" });
  const users = db.all("SELECT id, email, name, role, active FROM users WHERE organization_id = ? ORDER BY id",
    [user.organization_id]).map((u) => ({ ...u, active: Boolean(u.active) }));
  res.json({ organization: user.org_slug, users });
});

// ---- organization admin page: SSO onboarding, admin portal, domain verification --------------------
const forbidden = (res) => page(res, "Forbidden", "<p>Only organization admins can open this page.</p>", 403);

app.get("/admin", async (req, res) => {
  const user = orgAdmin(req);
  if (!user) return forbidden(res);
  const title = `${user.org_name}: single sign-on`;
  if (!user.scalekit_organization_id) {
    return page(res, title, '<form method="post" action="/admin/sso"><button id="enable-sso">Set up single sign-on' +
      "</button></form>");
  }
  const rows = (await sso.domains(user.scalekit_organization_id)).map((d) =>
    `<tr><td>${escape(d.domain)}</td><td class="status">${escape(d.status)}</td>` +
    `<td><code>${escape(d.txtName)}</code> <code>${escape(d.txtValue)}</code></td></tr>`).join("");
  page(res, title, '<form method="post" action="/admin/portal"><button id="portal">Configure SSO and directory sync' +
    "</button></form><h2>Domains</h2><p>Publish each pending domain's DNS TXT record; Scalekit then verifies it.</p>" +
    `<table id="domains">${rows}</table><form method="post" action="/admin/domains"><input name="domain" id="domain"` +
    ' required placeholder="example.com"> <button id="add-domain">Add domain</button></form>');
});

app.post("/admin/sso", async (req, res) => {
  const user = orgAdmin(req);
  if (!user) return forbidden(res);
  await sso.enableSso(db.get("SELECT * FROM organizations WHERE id = ?", [user.organization_id]));
  res.redirect(303, "/admin");
});

app.post("/admin/portal", async (req, res) => {
  const user = orgAdmin(req);
  if (!user?.scalekit_organization_id) return forbidden(res);
  res.redirect(303, await sso.portalLink(user.scalekit_organization_id));
});

app.post("/admin/domains", form, async (req, res) => {
  const user = orgAdmin(req);
  if (!user?.scalekit_organization_id) return forbidden(res);
  const domain = String(req.body?.domain ?? "");
  try {
    await sso.addDomain(user.scalekit_organization_id, domain);
  } catch {
    return page(res, "Domain not added", `<p class="error">${escape(domain)} could not be added (invalid, or ` +
      'registered already).</p><p><a href="/admin">Back</a></p>', 400);
  }
  res.redirect(303, "/admin");
});

// ---- directory sync webhooks ----------------------------------------------------------------------
// region webhook_route
app.post("/webhooks/scalekit", express.raw({ type: "*/*" }), async (req, res) => {
  let event;
  try {
    event = directorySync.verify(req.headers, Buffer.isBuffer(req.body) ? req.body.toString("utf8") : "");
  } catch {
    return res.status(401).json({ error: "invalid signature" });
  }
  res.json({ status: await directorySync.handle(String(req.headers["webhook-id"]), event) });
});
// endregion webhook_route

app.get("/healthz", (req, res) => res.json({ status: "ok" }));

app.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
  console.error(err);
  page(res, "Something went wrong", "<p>Please try again.</p>", 500);
});

