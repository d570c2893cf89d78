// The Next.js side of the wiring: the Auth of this bundle, and the signed-in user for pages and route handlers.
import { cookies, headers } from "next/headers";
import { redirect } from "next/navigation";
import { NextResponse } from "next/server";
import { Auth, InvalidToken, ScalekitUnavailable, loadConfig, remoteKeys, userOf, type Session, type User } from "./auth";
import { SESSION_COOKIE, unseal } from "./session";

// region singleton
const shared = globalThis as typeof globalThis & { scalekitKeys?: ReturnType<typeof remoteKeys> };
let auth: Auth | undefined;

/** One Auth per bundle, created on first use (`next build` runs without the Scalekit variables). proxy.ts and the
 *  app are bundled apart, each with its own copy of this module; they share one key cache, so /keys is fetched
 *  once per process. */
export function getAuth(): Auth {
  if (!auth) {
    const config = loadConfig();
    shared.scalekitKeys ??= remoteKeys(config);
    auth = new Auth(config, shared.scalekitKeys);
  }
  return auth;
}
// endregion singleton

// region current-user
/** The signed-in user, or undefined. proxy.ts has already refreshed an expired token for this request; this
 *  verifies again, because a page must not rely on the proxy alone. API routes also accept a Bearer token. */
export async function currentUser(): Promise<User | undefined> {
  const bearer = /^Bearer (.+)$/i.exec((await headers()).get("authorization") ?? "")?.[1];
  const sealed = (await cookies()).get(SESSION_COOKIE)?.value;
  const auth = getAuth();
  const session: Session | undefined = bearer
    ? { id: "", accessToken: bearer, refreshToken: "", idToken: "" }
    : unseal<Session>(sealed, auth.config.sessionSecret);
  if (!session) return undefined;
  try {
    return userOf(session, await auth.verify(session.accessToken));
  } catch (error) {
    if (error instanceof InvalidToken) return undefined;
    throw error; // ScalekitUnavailable: the error page, not a silent logout
  }
}
// endregion current-user

// region guards
/** Server Components: the user, or a redirect to log in and come back to `returnTo`. */
export async function requireUser(returnTo: string): Promise<User> {
  const user = await currentUser();
  if (!user) redirect(`/auth/login?returnTo=${encodeURIComponent(returnTo)}`);
  return user;
}

/** Roles and permissions come from the verified access token (a change in Scalekit shows after the next refresh). */
export function hasPermission(user: User, permission: string): boolean {
  return user.permissions.includes(permission);
}
// endregion guards

// region api-route
/** Route handlers of the API: 401 without a user, 403 without the permission, 503 when Scalekit is down. */
export function apiRoute<Params>(handler: (user: User, params: Params) => Response | Promise<Response>,
  options: { permission?: string } = {}) {
  return async (_request: Request, context: { params: Promise<Params> }): Promise<Response> => {
    let user: User | undefined;
    try {
      user = await currentUser();
    } catch (error) {
      if (!(error instanceof ScalekitUnavailable)) throw error;
      console.error(error.message);
      return NextResponse.json({ error: "unavailable", message: "Sign-in service unavailable, retry" },
        { status: 503, headers: { "Retry-After": "5" } });
    }
    if (!user) {
      return NextResponse.json({ error: "unauthorized", message: "Log in first" },
        { status: 401, headers: { "WWW-Authenticate": "Bearer" } });
    }
    if (options.permission && !hasPermission(user, options.permission)) {
      return NextResponse.json({ error: "forbidden", missing: options.permission }, { status: 403 });
    }
    const response = await handler(user, await context.params);
    response.headers.set("Cache-Control", "no-store");
    return response;
  };
}
// endregion api-route
