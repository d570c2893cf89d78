// Express 5 app: public home page, login/callback/logout, protected pages and API routes.
import express, { type NextFunction, type Request, type Response } from "express";
import {
  Auth, InvalidToken, LoginFailed, ScalekitUnavailable, SessionEnded, loadConfig, userOf,
  type LoginTransaction, type Session, type User,
} from "./auth.js";
import { LOGIN_COOKIE, LOGIN_MAX_AGE, SESSION_COOKIE, SESSION_MAX_AGE, cookieOptions, seal, unseal } from "./session.js";
import { page, escape } from "./pages.js";

const config = loadConfig();
const auth = new Auth(config);
const sessionCookie = { ...cookieOptions(config.appUrl), maxAge: SESSION_MAX_AGE * 1000 }; // Express counts ms
const loginCookie = { ...cookieOptions(config.appUrl), maxAge: LOGIN_MAX_AGE * 1000 };
const app = express();
app.disable("x-powered-by");

// A tiny cookie reader (Express 5 has none built in); values are ours, sealed, so no decoding is needed.
function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return undefined;
}

const queryString = (value: unknown) => (typeof value === "string" ? value : undefined);

// region session-middleware
declare global {
  namespace Express {
    interface Locals {
      user?: User;
    }
  }
}

/** Reads the sealed session cookie, refreshes an expired access token, and sets res.locals.user.
 *  A bad or ended session is cleared; a Scalekit outage answers 503 and keeps the cookie. */
async function loadSession(req: Request, res: Response, next: NextFunction) {
  const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
  try {
    if (bearer && req.path.startsWith("/api/")) {
      // API callers may send an access token instead of the cookie; it has no ID token, so no email or name.
      const claims = await auth.verify(bearer);
      res.locals.user = userOf({ id: "", accessToken: bearer, refreshToken: "", idToken: "" }, claims);
      return next();
    }
    const session = unseal<Session>(cookie(req, SESSION_COOKIE), config.sessionSecret);
    if (!session) return next();
    const current = await auth.authenticate(session);
    if (current.refreshed) {
      res.cookie(SESSION_COOKIE, seal(current.session, config.sessionSecret), sessionCookie);
    }
    res.locals.user = userOf(current.session, current.claims);
    next();
  } catch (error) {
    if (error instanceof InvalidToken || error instanceof SessionEnded) {
      if (!bearer) res.clearCookie(SESSION_COOKIE, sessionCookie);
      return next();
    }
    next(error);
  }
}
// endregion session-middleware

// region guards
/** Pages: no session sends the browser to log in and come back here. */
function requirePage(req: Request, res: Response, next: NextFunction) {
  if (res.locals.user) return next();
  res.redirect(302, `/auth/login?returnTo=${encodeURIComponent(req.originalUrl)}`);
}

/** API routes: no session is a 401, never a redirect. */
function requireApi(_req: Request, res: Response, next: NextFunction) {
  if (res.locals.user) return next();
  res.status(401).set("WWW-Authenticate", "Bearer").json({ error: "unauthorized", message: "Log in first" });
}

/** Roles and permissions come from the verified access token (they change in Scalekit, then after a refresh here). */
function requirePermission(permission: string) {
  return (req: Request, res: Response, next: NextFunction) => {
    if (res.locals.user?.permissions.includes(permission)) return next();
    if (req.path.startsWith("/api/")) return res.status(403).json({ error: "forbidden", missing: permission });
    res.status(403).send(page("Forbidden", `<p>You need the <code>${escape(permission)}</code> permission.</p>`));
  };
}
// endregion guards

app.get("/healthz", (_req, res) => {
  res.send("ok");
});

// region login-route
app.get("/auth/login", (req, res) => {
  const { url, transaction } = auth.startLogin({
    returnTo: queryString(req.query.returnTo),
    provider: queryString(req.query.provider),
    organizationId: queryString(req.query.organization_id),
    domain: queryString(req.query.domain),
    loginHint: queryString(req.query.login_hint),
  });
  res.cookie(LOGIN_COOKIE, seal(transaction, config.sessionSecret), loginCookie);
  res.redirect(302, url);
});
// endregion login-route

// region callback-route
app.get("/auth/callback", async (req, res) => {
  const transaction = unseal<LoginTransaction>(cookie(req, LOGIN_COOKIE), config.sessionSecret);
  res.clearCookie(LOGIN_COOKIE, loginCookie); // one attempt per transaction
  const session = await auth.finishLogin(req.query, transaction);
  res.cookie(SESSION_COOKIE, seal(session, config.sessionSecret), sessionCookie);
  res.redirect(302, transaction!.returnTo);
});
// endregion callback-route

// region logout-route
// Any method: a "Log out" link (GET) and a logout form (POST) both work. Logout only ends a session,
// so a request from another site can at worst log the user out, never in.
app.all("/auth/logout", (req, res) => {
  const session = unseal<Session>(cookie(req, SESSION_COOKIE), config.sessionSecret);
  res.clearCookie(SESSION_COOKIE, sessionCookie);
  res.redirect(303, auth.logoutUrl(session)); // 303: a POST from the logout form continues as a GET
});
// endregion logout-route

app.use(loadSession);

app.get("/", (_req, res) => {
  const user = res.locals.user;
  res.send(page("Home", user
    ? `<p>Signed in as ${escape(user.email || user.sub)}.</p><p><a href="/dashboard">Dashboard</a></p>`
    : `<p><a href="/auth/login">Log in</a> · <a href="/auth/login?provider=google">Log in with Google</a></p>
       <form action="/auth/login"><label>Work email <input name="login_hint" type="email"></label>
       <button>Continue with SSO</button></form>`));
});

app.get("/dashboard", requirePage, (_req, res) => {
  const user = res.locals.user!;
  res.set("Cache-Control", "no-store").send(page("Dashboard", `
    <p>Hello ${escape(user.name)} (${escape(user.email)}).</p>
    <p><a href="/profile">Profile</a> · <a href="/api/me">API: me</a> · <a href="/api/admin">API: admin</a>
    · <a href="/api/orgs/${escape(user.oid ?? "none")}/notes">API: my organization's notes</a></p>`));
});

// region profile
app.get("/profile", requirePage, (_req, res) => {
  const user = res.locals.user!;
  res.set("Cache-Control", "no-store").send(page("Profile", `
    <dl><dt>Email</dt><dd>${escape(user.email)}</dd><dt>Name</dt><dd>${escape(user.name)}</dd>
    <dt>User id</dt><dd><code>${escape(user.sub)}</code></dd>
    <dt>Organization</dt><dd><code>${escape(user.oid ?? "none")}</code></dd>
    <dt>Roles</dt><dd>${escape(user.roles.join(", ") || "none")}</dd>
    <dt>Permissions</dt><dd>${escape(user.permissions.join(", ") || "none")}</dd>
    <dt>Custom claims</dt><dd><pre>${escape(JSON.stringify(user.customClaims, null, 2))}</pre></dd></dl>`));
});
// endregion profile

app.get("/api/me", requireApi, (_req, res) => {
  res.set("Cache-Control", "no-store").json(res.locals.user);
});

app.get("/api/admin", requireApi, requirePermission("organization:write"), (_req, res) => {
  res.set("Cache-Control", "no-store").json({ admin: true });
});

// region org-data
// Organization-scoped data: a user reads the notes of the organization of their session, no other.
const NOTES: Record<string, string[]> = {
  org_70000000000001001: ["Renew the Okta certificate in March"],
  org_70000000000001002: ["Invite the finance team"],
};

app.get("/api/orgs/:orgId/notes", requireApi, (req, res) => {
  const orgId = req.params.orgId as string;
  if (orgId !== res.locals.user!.oid) return void res.status(403).json({ error: "forbidden", message: "Not your organization" });
  res.set("Cache-Control", "no-store").json({ organization: orgId, notes: NOTES[orgId] ?? [] });
});
// endregion org-data

// region errors
app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
  const api = req.path.startsWith("/api/");
  if (error instanceof LoginFailed) {
    return void res.status(400).send(page("Login failed", `<p>${escape(error.message)}</p><p><a href="/auth/login">Log in again</a></p>`));
  }
  if (error instanceof ScalekitUnavailable) {
    console.error(error.message);
    res.status(503).set("Retry-After", "5");
    return void (api ? res.json({ error: "unavailable", message: "Sign-in service unavailable, retry" })
      : res.send(page("Try again", "<p>The sign-in service is not answering. Try again in a moment.</p>")));
  }
  console.error(error);
  res.status(500);
  return void (api ? res.json({ error: "internal" }) : res.send(page("Error", "<p>Something went wrong.</p>")));
});
// endregion errors

const port = Number(process.env.PORT ?? 3000);
app.listen(port, "127.0.0.1", () => console.log(`Listening on ${config.appUrl} (127.0.0.1:${port})`));
