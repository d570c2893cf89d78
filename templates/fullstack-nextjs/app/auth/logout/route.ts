import { NextResponse, type NextRequest } from "next/server";
import type { Session } from "@/lib/auth";
import { getAuth } from "@/lib/scalekit";
import { SESSION_COOKIE, cookieOptions, unseal } from "@/lib/session";

// region logout-route
function logout(request: NextRequest) {
  const auth = getAuth();
  const session = unseal<Session>(request.cookies.get(SESSION_COOKIE)?.value, auth.config.sessionSecret);
  // 303: a POST from the logout form continues as a GET to Scalekit's logout page.
  const response = NextResponse.redirect(auth.logoutUrl(session), 303);
  response.cookies.set(SESSION_COOKIE, "", { ...cookieOptions(auth.config.appUrl), maxAge: 0 });
  return response;
}

export { logout as GET, logout as POST };
// endregion logout-route
