// Runs before every page and API route. Refreshing belongs here (or in route handlers): pages and Server
// Components cannot set cookies, so a refresh done while rendering would lose the rotated refresh token.
import { NextResponse, type NextRequest } from "next/server";
import { InvalidToken, ScalekitUnavailable, SessionEnded, type Session } from "./lib/auth";
import { getAuth } from "./lib/scalekit";
import { SESSION_COOKIE, SESSION_MAX_AGE, cookieOptions, seal, unseal } from "./lib/session";

const PROTECTED_PAGES = ["/dashboard", "/profile"];

// region proxy
export async function proxy(request: NextRequest) {
  const auth = getAuth();
  const { pathname, search } = request.nextUrl;
  const api = pathname.startsWith("/api/");
  const bearer = api && request.headers.has("authorization"); // API callers with a token: the route verifies it
  const session = unseal<Session>(request.cookies.get(SESSION_COOKIE)?.value, auth.config.sessionSecret);
  let signedIn = false;
  let newCookie: string | undefined; // a refreshed session, or "" when the session is over
  if (session && !bearer) {
    try {
      const current = await auth.authenticate(session);
      signedIn = true;
      if (current.refreshed) newCookie = seal(current.session, auth.config.sessionSecret);
    } catch (error) {
      if (error instanceof ScalekitUnavailable) return unavailable(api, error);
      if (!(error instanceof InvalidToken || error instanceof SessionEnded)) throw error;
      newCookie = "";
    }
  }

  let response: NextResponse;
  if (!signedIn && !bearer && PROTECTED_PAGES.some((p) => pathname === p || pathname.startsWith(`${p}/`))) {
    const returnTo = encodeURIComponent(pathname + search);
    response = NextResponse.redirect(`${auth.config.appUrl}/auth/login?returnTo=${returnTo}`, 302);
  } else if (!signedIn && !bearer && api) {
    response = NextResponse.json({ error: "unauthorized", message: "Log in first" },
      { status: 401, headers: { "WWW-Authenticate": "Bearer" } });
  } else if (newCookie === undefined) {
    return NextResponse.next();
  } else {
    // This request's page or route handler must see the new tokens, not the ones the browser sent.
    if (newCookie) request.cookies.set(SESSION_COOKIE, newCookie);
    else request.cookies.delete(SESSION_COOKIE);
    response = NextResponse.next({ request: { headers: request.headers } });
  }
  if (newCookie !== undefined) {
    response.cookies.set(SESSION_COOKIE, newCookie,
      { ...cookieOptions(auth.config.appUrl), maxAge: newCookie ? SESSION_MAX_AGE : 0 });
  }
  return response;
}
// endregion proxy

function unavailable(api: boolean, error: Error) {
  console.error(error.message); // Scalekit is down: keep the cookie, ask the user to retry
  const init = { status: 503, headers: { "Retry-After": "5" } };
  return api
    ? NextResponse.json({ error: "unavailable", message: "Sign-in service unavailable, retry" }, init)
    : new NextResponse("The sign-in service is not answering. Try again in a moment.", init);
}

export const config = {
  // Every page and API route, public ones too (a signed-in user's session is refreshed wherever they go),
  // but not static files and the login routes (they manage their cookies themselves).
  matcher: ["/((?!_next/static|_next/image|favicon.ico|auth/).*)"],
};
