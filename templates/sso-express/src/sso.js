// Enterprise SSO added to the app. Scalekit runs SAML or OIDC with each customer's identity
// provider (IdP) and returns a verified profile; this file turns that profile into one of the app's
// own users and sessions. Scalekit's tokens are read here once and never stored.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { ScalekitClient } from "@scalekit-sdk/node";
import { DomainType, VerificationStatus } from "@scalekit-sdk/node/lib/pkg/grpc/scalekit/v1/domains/domains_pb.js";
import { db, transaction } from "./db.js";

export const APP_URL = process.env.APP_URL || "http://localhost:3100";
const REDIRECT_URI = `${APP_URL}/auth/callback`;
const ENVIRONMENT_URL = process.env.SCALEKIT_ENVIRONMENT_URL;
const CLIENT_ID = process.env.SCALEKIT_CLIENT_ID;
export const UNAVAILABLE = "Single sign-on is unavailable right now: Scalekit cannot be reached. " +
  "Sign in with your password, or try again in a few minutes.";

let client;
// Created on first use: nothing about Scalekit runs before a request needs it.
export function scalekit() {
  client ??= new ScalekitClient(ENVIRONMENT_URL, CLIENT_ID, process.env.SCALEKIT_CLIENT_SECRET);
  return client;
}

// A Scalekit call that fails for lack of Scalekit (not for bad input) answers 503 with UNAVAILABLE.
async function reachScalekit(call) {
  try {
    return await call();
  } catch {
    throw new SSOError(UNAVAILABLE, 503);
  }
}
export const LOGIN_TTL = 600; // seconds a started SSO login may take
const now = () => Math.floor(Date.now() / 1000);

// A login the app refuses; the message is shown to the user with this HTTP status.
export class SSOError extends Error {
  constructor(message, status = 400) {
    super(message);
    this.status = status;
  }
}

// region discovery
// Home-realm discovery: does the email's domain belong to a customer with SSO?
export async function hasSso(email) {
  const domain = email.split("@").pop().trim().toLowerCase();
  const { connections } = await reachScalekit(() => scalekit().connection.listConnectionsByDomain(domain));
  return connections.some((connection) => connection.enabled);
}
// endregion discovery

// region start
// Returns the Scalekit authorization URL and the state to keep in a cookie for the callback.
export function startLogin({ email, organizationId, connectionId } = {}) {
  const state = randomBytes(32).toString("base64url");
  const codeVerifier = randomBytes(48).toString("base64url");
  const nonce = randomBytes(32).toString("base64url"); // must come back in the ID token
  db.run("INSERT INTO sso_logins (state, code_verifier, nonce, expires_at) VALUES (?, ?, ?, ?)",
    [state, codeVerifier, nonce, now() + LOGIN_TTL]);
  const url = scalekit().getAuthorizationUrl(REDIRECT_URI, {
    state,
    nonce,
    connectionId,
    organizationId,
    loginHint: email, // Scalekit picks the connection of the organization that verified this domain
    domainHint: email?.split("@")[1],
    codeChallenge: createHash("sha256").update(codeVerifier).digest("base64url"),
    codeChallengeMethod: "S256",
  });
  return { url, state };
}
// endregion start

// region idp_initiated
// A login started at the IdP's portal: check Scalekit's token, then start a fresh SP-initiated
// login to the same connection. Its relay_state is not used as our state.
export async function startIdpInitiatedLogin(token) {
  let claims;
  try {
    claims = await scalekit().getIdpInitiatedLoginClaims(token, { issuer: ENVIRONMENT_URL });
  } catch {
    throw new SSOError("This sign-in link from your identity provider is invalid or has expired.");
  }
  return startLogin({ connectionId: claims.connection_id, organizationId: claims.organization_id,
    email: claims.login_hint });
}
// endregion idp_initiated

// region callback
// Checks the callback, exchanges the code and returns the local user id to start a session for.
export async function finishLogin({ code, state, cookieState }) {
  if (!state || !cookieState || state.length !== cookieState.length ||
      !timingSafeEqual(Buffer.from(state), Buffer.from(cookieState))) {
    throw new SSOError("This sign-in attempt is not the one your browser started. Please sign in again.");
  }
  const pending = db.get("DELETE FROM sso_logins WHERE state = ? AND expires_at > ? RETURNING code_verifier, nonce",
    [state, now()]);
  if (!pending || !code) {
    throw new SSOError("This sign-in attempt has expired or was already used. Please sign in again.");
  }
  const result = await scalekit().authenticateWithCode(code, REDIRECT_URI, { codeVerifier: pending.code_verifier })
    .catch((error) => { throw exchangeFailed(error); });
  let claims;
  try {
    // The Node SDK only decodes the ID token: verify its signature, issuer and audience here.
    claims = await scalekit().validateToken(result.idToken, { issuer: ENVIRONMENT_URL, audience: [CLIENT_ID] });
  } catch {
    throw new SSOError("Your identity provider's answer could not be verified. Please sign in again.");
  }
  // The ID token must answer this login: a code obtained for another login carries another nonce.
  if (typeof claims.nonce !== "string" || claims.nonce.length !== pending.nonce.length ||
      !timingSafeEqual(Buffer.from(claims.nonce), Buffer.from(pending.nonce))) {
    throw new SSOError("Your identity provider's answer belongs to another sign-in. Please sign in again.");
  }
  const domains = await verifiedDomains(claims.oid);
  return transaction(() => findOrCreateUser({ connectionId: claims.amr[0], subject: claims.sub,
    organizationId: claims.oid, email: claims.email ?? "", name: claims.name ?? "", verified: domains }));
}

// A code exchange that Scalekit refused (bad, expired or reused code: HTTP 4xx) is the user's to retry;
// no answer, a 5xx or a 429 means Scalekit is down (the SDK throws axios errors, with the HTTP answer).
function exchangeFailed(error) {
  const status = error?.response?.status;
  if (status === undefined || status >= 500 || status === 429) return new SSOError(UNAVAILABLE, 503);
  return new SSOError("Your identity provider's answer could not be verified. Please sign in again.");
}
// endregion callback

// region link
// The domains this organization proved it owns (DNS check in the admin portal).
export async function verifiedDomains(organizationId) {
  const { domains } = await reachScalekit(() =>
    scalekit().domain.listDomains(organizationId, { domainType: "ORGANIZATION_DOMAIN" }));
  return new Set(domains
    .filter((d) => d.domainType === DomainType.ORGANIZATION_DOMAIN &&
      [VerificationStatus.VERIFIED, VerificationStatus.AUTO_VERIFIED].includes(d.verificationStatus))
    .map((d) => d.domain.toLowerCase()));
}

// Linking rules: an IdP account is known by (connection, subject), never by email alone. A new one
// may join or create an account by email only when the email's domain is a verified domain of the
// same organization, so one customer's IdP cannot claim another customer's users.
export function findOrCreateUser({ connectionId, subject, organizationId, email, name, verified }) {
  const org = db.get("SELECT id FROM organizations WHERE scalekit_organization_id = ?", [organizationId]);
  if (!org) throw new SSOError("Your organization has not set up single sign-on with this app.", 403);
  let user = db.get("SELECT users.* FROM sso_identities JOIN users ON users.id = sso_identities.user_id" +
    " WHERE connection_id = ? AND subject = ?", [connectionId, subject]);
  if (!user) {
    email = email.trim().toLowerCase();
    if (!email.includes("@") || !verified.has(email.split("@")[1])) {
      throw new SSOError("Your identity provider signed you in with an email outside your organization's " +
        "verified domains (profile_not_allowed_outside_organization).", 403);
    }
    user = db.get("SELECT * FROM users WHERE email = ?", [email]);
    if (!user) { // just-in-time provisioning
      const { lastInsertRowid } = db.run("INSERT INTO users (organization_id, email, name) VALUES (?, ?, ?)",
        [org.id, email, name || email]);
      user = db.get("SELECT * FROM users WHERE id = ?", [lastInsertRowid]);
    }
    db.run("INSERT INTO sso_identities (connection_id, subject, user_id) VALUES (?, ?, ?)",
      [connectionId, subject, user.id]);
  }
  if (user.organization_id !== org.id) throw new SSOError("This account belongs to another organization.", 403);
  if (!user.active) throw new SSOError("This account has been deactivated by your organization.", 403);
  return user.id;
}
// endregion link

// region admin
// A fresh admin portal link: single use, valid for one minute, so redirect to it at once.
export async function portalLink(organizationId) {
  return (await scalekit().organization.generatePortalLink(organizationId)).location;
}

export async function domains(organizationId) {
  const { domains } = await scalekit().domain.listDomains(organizationId);
  return domains.map((d) => ({ domain: d.domain, status: VerificationStatus[d.verificationStatus],
    txtName: d.txtRecordKey, txtValue: d.txtRecordSecret }));
}

// Onboard a customer: its Scalekit organization, found or created by our slug as external id.
export async function enableSso(org) {
  let organizationId;
  try {
    organizationId = (await scalekit().organization.getOrganizationByExternalId(org.slug)).organization.id;
  } catch {
    organizationId = (await scalekit().organization.createOrganization(org.name, { externalId: org.slug })).organization.id;
  }
  db.run("UPDATE organizations SET scalekit_organization_id = ? WHERE id = ?", [organizationId, org.id]);
}

// Register a domain; the admin publishes its TXT record and Scalekit verifies it by DNS.
export async function addDomain(organizationId, domain) {
  await scalekit().domain.createDomain(organizationId, domain.trim().toLowerCase());
}
// endregion admin
