// Sealed cookies: the session (and the short-lived login transaction) are JSON, compressed, then encrypted and
// authenticated with AES-256-GCM under SESSION_SECRET, so the browser can neither read nor change them.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { deflateRawSync, inflateRawSync } from "node:zlib";

export const SESSION_COOKIE = "sk_session";
export const LOGIN_COOKIE = "sk_login";
export const SESSION_MAX_AGE = 7 * 24 * 3600; // seconds; Scalekit's session policy still ends it earlier
export const LOGIN_MAX_AGE = 10 * 60;
const MAX_COOKIE_CHARS = 3800; // browsers drop cookies over 4096 bytes, name and attributes included

// region cookie-options
/** HttpOnly, SameSite=Lax, and Secure everywhere except plain-http localhost (browsers drop Secure cookies there). */
export function cookieOptions(appUrl: string) {
  const { protocol, hostname } = new URL(appUrl);
  const plainLocalhost = protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(hostname);
  return { httpOnly: true, sameSite: "lax", secure: !plainLocalhost, path: "/" } as const;
}
// endregion cookie-options

function key(secret: string): Buffer {
  if (!secret || secret.length < 32) {
    throw new Error("SESSION_SECRET must be at least 32 characters (openssl rand -hex 32)");
  }
  return createHash("sha256").update(secret).digest();
}

export function seal(value: unknown, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key(secret), iv);
  const body = Buffer.concat([cipher.update(deflateRawSync(JSON.stringify(value))), cipher.final()]);
  const sealed = Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
  // Three JWTs fit with room to spare; many roles or custom claims may not: then keep sessions server-side.
  if (sealed.length > MAX_COOKIE_CHARS) throw new Error(`sealed cookie is ${sealed.length} characters, too large`);
  return sealed;
}

const opened = new Map<string, { secret: string; value: unknown }>(); // recent cookies: decrypt each once
const OPENED_CACHE_SIZE = 10_000;

/** The sealed value, or undefined when the cookie is missing, forged or tampered with. Do not change it:
 *  the same cookie gives the same object. */
export function unseal<T>(sealed: string | undefined, secret: string): T | undefined {
  if (!sealed) return undefined;
  const known = opened.get(sealed);
  if (known?.secret === secret) return known.value as T;
  try {
    const raw = Buffer.from(sealed, "base64url");
    const decipher = createDecipheriv("aes-256-gcm", key(secret), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    const plain = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]); // throws if tampered
    const value = JSON.parse(inflateRawSync(plain).toString("utf8")) as T;
    if (opened.size >= OPENED_CACHE_SIZE) opened.delete(opened.keys().next().value!);
    opened.set(sealed, { secret, value });
    return value;
  } catch {
    return undefined;
  }
}
