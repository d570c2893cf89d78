// All the Scalekit wiring: login URL, callback, token checks, refresh, logout URL.
// Framework-free, so the same file works in Express and in Next.js route handlers.
import { createHash, randomBytes } from "node:crypto";
import { ScalekitClient } from "@scalekit-sdk/node";
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from "jose";

// region config
export interface Config {
  appUrl: string; // public origin of this app, e.g. https://app.example.com
  environmentUrl: string;
  clientId: string;
  clientSecret: string;
  sessionSecret: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const missing = ["SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET", "SESSION_SECRET"]
    .filter((name) => !env[name]);
  if (missing.length) throw new Error(`Set ${missing.join(", ")} (see .env.example)`);
  const appUrl = new URL(env.APP_URL || `http://localhost:${env.PORT || 3000}`);
  const localhost = ["localhost", "127.0.0.1", "[::1]"].includes(appUrl.hostname);
  if (appUrl.protocol !== "https:" && !localhost) {
    throw new Error("APP_URL must be https:// (plain http is only for localhost): session cookies are Secure");
  }
  if (env.SESSION_SECRET!.length < 32) throw new Error("SESSION_SECRET must be at least 32 characters");
  return {
    appUrl: appUrl.origin,
    environmentUrl: env.SCALEKIT_ENVIRONMENT_URL!.replace(/\/+$/, ""), // a trailing slash breaks the issuer check
    clientId: env.SCALEKIT_CLIENT_ID!,
    clientSecret: env.SCALEKIT_CLIENT_SECRET!,
    sessionSecret: env.SESSION_SECRET!,
  };
}
// endregion config

/** Scalekit could not be reached or answered with a server error: ask the user to retry (503), keep the session. */
export class ScalekitUnavailable extends Error {}
/** The login cannot complete (bad state, replayed code, failed ID token check): show an error (400), start again. */
export class LoginFailed extends Error {}
/** The session is over (refresh token revoked, reused or expired): clear it and log in again. */
export class SessionEnded extends Error {}
/** A token failed verification (forged, wrong issuer or audience, malformed): refuse it (401). */
export class InvalidToken extends Error {}
/** A valid token that has expired: refresh it. */
export class TokenExpired extends InvalidToken {}

export interface LoginTransaction {
  state: string;
  nonce: string;
  codeVerifier: string;
  returnTo: string;
}

export interface Session {
  id: string; // new at every login, so a session id planted before login is never reused
  accessToken: string;
  refreshToken: string;
  idToken: string; // verified at login; kept for the profile and for logout's id_token_hint
}

export interface LoginOptions {
  returnTo?: string;
  provider?: string; // social login: skip Scalekit's login page
  organizationId?: string; // enterprise SSO of one organization
  domain?: string; // enterprise SSO of the organization that owns this email domain
  loginHint?: string; // the user's email, to pre-fill the login page or find their SSO
}

const SOCIAL_PROVIDERS = ["google", "github", "microsoft", "gitlab", "linkedin", "salesforce"];
// jose error codes that mean "this token is bad"; any other failure (no answer from /keys) means Scalekit is down.
const TOKEN_PROBLEMS = new Set([
  "ERR_JWT_CLAIM_VALIDATION_FAILED", "ERR_JWT_INVALID", "ERR_JWS_INVALID",
  "ERR_JWS_SIGNATURE_VERIFICATION_FAILED", "ERR_JOSE_ALG_NOT_ALLOWED", "ERR_JOSE_NOT_SUPPORTED",
  "ERR_JWKS_NO_MATCHING_KEY", "ERR_JWKS_MULTIPLE_MATCHING_KEYS",
]);
const REFRESH_EARLY_S = 10; // refresh a token this close to expiry, so it does not expire on its way to an API
const REUSE_WINDOW_MS = 60_000; // how long a rotated refresh token still maps to its successor in this process
const VERIFIED_CACHE_SIZE = 10_000; // tokens whose signature was checked, kept (oldest out first) until they expire

const randomToken = () => randomBytes(32).toString("base64url");

export class Auth {
  readonly scalekit: ScalekitClient;
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  private readonly refreshing = new Map<string, Promise<Session>>();
  private readonly rotated = new Map<string, { session: Session; until: number }>();
  private readonly verified = new Map<string, JWTPayload>(); // token -> claims: one signature check per token

  constructor(readonly config: Config, jwks = remoteKeys(config)) {
    this.scalekit = new ScalekitClient(config.environmentUrl, config.clientId, config.clientSecret);
    this.jwks = jwks;
  }

  get redirectUri(): string {
    return `${this.config.appUrl}/auth/callback`;
  }

  // region login
  /** The Scalekit authorization URL, and what the callback needs to check it (kept in a sealed cookie). */
  startLogin(options: LoginOptions): { url: string; transaction: LoginTransaction } {
    const transaction: LoginTransaction = {
      state: randomToken(),
      nonce: randomToken(),
      codeVerifier: randomToken(),
      returnTo: this.safeReturnTo(options.returnTo),
    };
    const url = this.scalekit.getAuthorizationUrl(this.redirectUri, {
      scopes: ["openid", "profile", "email", "offline_access"], // offline_access: a refresh token
      state: transaction.state,
      nonce: transaction.nonce,
      codeChallenge: createHash("sha256").update(transaction.codeVerifier).digest("base64url"),
      codeChallengeMethod: "S256",
      ...this.connectionHint(options),
    });
    return { url, transaction };
  }

  private connectionHint(options: LoginOptions) {
    if (options.provider) {
      if (!SOCIAL_PROVIDERS.includes(options.provider)) throw new LoginFailed(`Unknown provider "${options.provider}"`);
      return { provider: options.provider };
    }
    if (options.organizationId) {
      if (!/^org_[A-Za-z0-9]+$/.test(options.organizationId)) throw new LoginFailed("organization_id looks wrong");
      return { organizationId: options.organizationId };
    }
    const hints: { domainHint?: string; loginHint?: string } = {};
    if (options.domain) {
      if (!/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(options.domain)) throw new LoginFailed("domain looks wrong");
      hints.domainHint = options.domain.toLowerCase();
    }
    if (options.loginHint) {
      if (!/^[^@\s]+@[^@\s]+$/.test(options.loginHint)) throw new LoginFailed("login_hint is not an email address");
      hints.loginHint = options.loginHint;
    }
    return hints;
  }
  // endregion login

  // region return-to
  /** Same-site paths only: "/dashboard?tab=1" is kept; "//evil.example", "https://…" and "/\\evil" become the default. */
  safeReturnTo(value: string | undefined, fallback = "/dashboard"): string {
    if (!value || !value.startsWith("/") || value.startsWith("//") || /[\\\u0000-\u001f]/.test(value)) return fallback;
    const url = new URL(value, this.config.appUrl);
    return url.origin === this.config.appUrl ? url.pathname + url.search + url.hash : fallback;
  }
  // endregion return-to

  // region callback
  /** Checks state, exchanges the code (with the PKCE verifier) and verifies the ID token. A new session each time. */
  async finishLogin(query: Record<string, unknown>, transaction: LoginTransaction | undefined): Promise<Session> {
    if (query.error !== undefined) {
      // Show the OAuth error code only: error_description is text anyone can put in a link to this page.
      const code = typeof query.error === "string" && /^[a-z_]{1,40}$/.test(query.error) ? ` (${query.error})` : "";
      throw new LoginFailed(`Scalekit did not sign you in${code}`);
    }
    if (!transaction || typeof query.state !== "string" || query.state !== transaction.state) {
      throw new LoginFailed("The login state does not match this browser; start the login again");
    }
    if (typeof query.code !== "string" || !query.code) throw new LoginFailed("The callback has no code");
    let result;
    try {
      result = await this.scalekit.authenticateWithCode(query.code, this.redirectUri, {
        codeVerifier: transaction.codeVerifier,
      });
    } catch (error) {
      const status = httpStatus(error);
      if (status === 400) throw new LoginFailed("The code is invalid, expired or already used; log in again");
      throw status === undefined || status >= 500 ? unavailable(error) : error;
    }
    // authenticateWithCode only decodes the ID token: verify signature, iss, aud, exp and nonce here.
    let idClaims: JWTPayload;
    try {
      idClaims = await this.verify(result.idToken);
    } catch (error) {
      throw error instanceof InvalidToken ? new LoginFailed(`The ID token is invalid: ${error.message}`) : error;
    }
    if (idClaims.nonce !== transaction.nonce) throw new LoginFailed("The ID token's nonce does not match this login");
    if (!result.refreshToken) throw new LoginFailed("No refresh token: request the offline_access scope");
    return { id: randomToken(), accessToken: result.accessToken, refreshToken: result.refreshToken, idToken: result.idToken };
  }
  // endregion callback

  // region verify
  /** Verifies a Scalekit JWT (signature, iss, aud, exp). Throws InvalidToken (TokenExpired when only expired) for a
   *  bad token and ScalekitUnavailable when the keys cannot be fetched: "the token is bad" and "Scalekit is down"
   *  need different answers (401 and 503). */
  async verify(token: string): Promise<JWTPayload> {
    const known = this.verified.get(token);
    if (known && known.exp! > Date.now() / 1000) return known;
    try {
      const { payload } = await jwtVerify(token, this.jwks, {
        issuer: this.config.environmentUrl,
        audience: this.config.clientId,
        algorithms: ["RS256"],
        requiredClaims: ["exp"],
      });
      if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(token, payload);
      return payload;
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      if (code === "ERR_JWT_EXPIRED") throw new TokenExpired(code);
      if (TOKEN_PROBLEMS.has(code)) throw new InvalidToken(code);
      throw unavailable(error);
    }
  }
  // endregion verify

  // region refresh
  /**
   * The session with a valid access token, refreshed when it has expired, and the token's claims.
   * A rotated refresh token may be used once, so concurrent requests of one session share one refresh,
   * and requests that still carry the old cookie get its successor for a minute. This works inside one
   * process; with several processes, keep sessions in a shared store (Redis) or use sticky sessions, or a
   * second process reusing the old refresh token makes Scalekit revoke the session.
   */
  async authenticate(session: Session, refreshEarly = true): Promise<{ session: Session; claims: JWTPayload; refreshed: boolean }> {
    let claims: JWTPayload | undefined;
    try {
      claims = await this.verify(session.accessToken);
      if (!refreshEarly || claims.exp! - Date.now() / 1000 > REFRESH_EARLY_S) return { session, claims, refreshed: false };
    } catch (error) {
      if (!(error instanceof TokenExpired)) throw error;
    }
    let fresh: Session;
    try {
      fresh = await this.refreshOnce(session);
    } catch (error) {
      // Still valid for a few seconds: an outage does not sign the user out yet.
      if (claims && error instanceof ScalekitUnavailable) return { session, claims, refreshed: false };
      throw error;
    }
    // A successor from a minute ago may have expired too: follow the chain (without refreshing early).
    return { ...(await this.authenticate(fresh, false)), refreshed: true };
  }

  private refreshOnce(session: Session): Promise<Session> {
    const now = Date.now();
    for (const [token, entry] of this.rotated) if (entry.until < now) this.rotated.delete(token);
    const done = this.rotated.get(session.refreshToken);
    if (done) return Promise.resolve(done.session);
    let pending = this.refreshing.get(session.refreshToken);
    if (!pending) {
      pending = this.refresh(session).finally(() => this.refreshing.delete(session.refreshToken));
      this.refreshing.set(session.refreshToken, pending);
    }
    return pending;
  }

  // region refresh-grant
  /** The refresh grant, sent directly: the SDK's refreshAccessToken hides the HTTP status in its error message
   *  and drops the new ID token. 400 invalid_grant ends the session; 5xx or no answer is an outage. */
  private async refresh(session: Session): Promise<Session> {
    let response: Response;
    try {
      response = await fetch(`${this.config.environmentUrl}/oauth/token`, {
        method: "POST",
        body: new URLSearchParams({
          grant_type: "refresh_token",
          refresh_token: session.refreshToken,
          client_id: this.config.clientId,
          client_secret: this.config.clientSecret,
        }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      throw unavailable(error);
    }
    const body = (await response.json().catch(() => ({}))) as Record<string, string>;
    if (response.status === 400 && body.error === "invalid_grant") throw new SessionEnded(body.error_description);
    if (response.status >= 500 || response.status === 429) throw new ScalekitUnavailable(`token endpoint: ${response.status}`);
    if (!response.ok || !body.access_token || !body.refresh_token) {
      throw new Error(`refresh failed: ${response.status} ${body.error ?? ""}`); // a configuration problem
    }
    let idToken = session.idToken;
    if (body.id_token) {
      await this.verify(body.id_token);
      idToken = body.id_token;
    }
    const fresh = { id: session.id, accessToken: body.access_token, refreshToken: body.refresh_token, idToken };
    this.rotated.set(session.refreshToken, { session: fresh, until: Date.now() + REUSE_WINDOW_MS });
    return fresh;
  }
  // endregion refresh-grant
  // endregion refresh

  // region logout
  /** Where to send the browser after clearing the cookie: Scalekit ends its own session there (it needs its
   *  cookie, so a server-side call would not), then returns to a post-logout URL registered in the dashboard. */
  logoutUrl(session: Session | undefined): string {
    if (!session) return `${this.config.appUrl}/`;
    return this.scalekit.getLogoutUrl({ idTokenHint: session.idToken, postLogoutRedirectUri: `${this.config.appUrl}/` });
  }
  // endregion logout
}

/** Scalekit's signing keys, fetched once, then again only for an unknown kid (a key rotation), at most every 30 s. */
export function remoteKeys(config: Config) {
  return createRemoteJWKSet(new URL(`${config.environmentUrl}/keys`), { cacheMaxAge: Infinity });
}

// region user
export interface User {
  sub: string; // the user id
  email: string;
  name: string;
  oid?: string; // the organization of this session
  roles: string[];
  permissions: string[];
  customClaims: Record<string, unknown>;
}

const STANDARD_CLAIMS = new Set([
  "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "azp", "sid", "oid", "amr", "at_hash", "c_hash", "auth_time",
  "nonce", "client_id", "scope", "roles", "permissions", "email", "email_verified", "name", "given_name",
  "family_name", "preferred_username", "picture", "locale",
]);

/** Email and name come from the ID token (verified at login, sealed in the cookie since); roles, permissions
 *  and the organization from the access token just verified. User access tokens carry no email. */
export function userOf(session: Session, accessClaims: JWTPayload): User {
  const id = session.idToken ? decodeJwt(session.idToken) : {}; // Bearer callers have no ID token
  const customClaims: Record<string, unknown> = {};
  for (const [name, value] of [...Object.entries(id), ...Object.entries(accessClaims)]) {
    if (!STANDARD_CLAIMS.has(name)) customClaims[name] = value;
  }
  return {
    sub: String(accessClaims.sub),
    email: String(id.email ?? ""),
    name: String(id.name ?? id.email ?? ""),
    oid: typeof accessClaims.oid === "string" ? accessClaims.oid : undefined,
    roles: stringList(accessClaims.roles),
    permissions: stringList(accessClaims.permissions),
    customClaims,
  };
}
// endregion user

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

/** The HTTP status of an SDK call that got an answer (the SDK throws axios errors), undefined for no answer. */
function httpStatus(error: unknown): number | undefined {
  return (error as { response?: { status?: number } })?.response?.status;
}

function unavailable(error: unknown): ScalekitUnavailable {
  const reason = error instanceof Error ? error.message : String(error);
  return new ScalekitUnavailable(`Scalekit is unreachable or failing: ${reason}`);
}
