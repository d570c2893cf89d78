// Small helpers for the route handlers: cookies, redirects and plain HTML answers.
import { cookies } from "next/headers";
import { NextResponse } from "next/server";
import { createSession, SESSION_TTL, sessionUser, type SessionUser } from "./db";
import { appUrl, LOGIN_TTL } from "./sso";

export const SESSION_COOKIE = "session";
export const STATE_COOKIE = "sso_state";
const cookieOptions = () => ({ httpOnly: true, sameSite: "lax" as const, secure: appUrl().startsWith("https://"), path: "/" });

export async function currentUser(): Promise<SessionUser | null> {
  return sessionUser((await cookies()).get(SESSION_COOKIE)?.value);
}

export async function orgAdmin(): Promise<SessionUser | null> {
  const user = await currentUser();
  return user?.role === "admin" ? user : null;
}

export const redirectTo = (path: string, status = 303) => NextResponse.redirect(new URL(path, appUrl()), status);

export function signedIn(userId: number): NextResponse {
  const response = redirectTo("/dashboard");
  response.cookies.set(SESSION_COOKIE, createSession(userId), { ...cookieOptions(), maxAge: SESSION_TTL });
  response.cookies.delete({ name: STATE_COOKIE, path: "/" });
  return response;
}

export function toIdentityProvider({ url, state }: { url: string; state: string }): NextResponse {
  const response = NextResponse.redirect(url, 302);
  response.cookies.set(STATE_COOKIE, state, { ...cookieOptions(), maxAge: LOGIN_TTL });
  return response;
}

const escape = (s: unknown) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// A plain page for refusals (bad state, wrong password...), with its HTTP status.
export function message(title: string, text: string, status: number): Response {
  return new Response(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>` +
    `</head><body><h1>${escape(title)}</h1><p class="error">${escape(text)}</p><p><a href="/login">Sign in</a>` +
    "</p></body></html>", { status, headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } });
}

// Forms post only from this app's own pages (the webhook is checked by its signature instead).
export function crossSite(request: Request): Response | null {
  const origin = request.headers.get("origin");
  return origin && origin !== new URL(appUrl()).origin
    ? message("Forbidden", "Cross-site form posts are not accepted.", 403) : null;
}
