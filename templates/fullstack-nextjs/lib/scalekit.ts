// The Next.js side of the wiring: one Auth per process, and the signed-in user for pages and route handlers.
import { cookies, headers } from "next/headers";
import { redirect } from "next/navigation";
import { Auth, InvalidToken, loadConfig, userOf, type Session, type User } from "./auth";
import { SESSION_COOKIE, unseal } from "./session";

// region singleton
const shared = globalThis as typeof globalThis & { scalekitAuth?: Auth };

/** One Auth (Scalekit client, key cache, refresh locks) per process, shared by proxy.ts and the app's bundles.
 *  Created on first use: `next build` runs without the Scalekit variables. */
export function getAuth(): Auth {
  shared.scalekitAuth ??= new Auth(loadConfig());
  return shared.scalekitAuth;
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
