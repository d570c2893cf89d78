import { NextResponse, type NextRequest } from "next/server";
import { LoginFailed } from "@/lib/auth";
import { escape, htmlPage } from "@/lib/pages";
import { getAuth } from "@/lib/scalekit";
import { LOGIN_COOKIE, LOGIN_MAX_AGE, cookieOptions, seal } from "@/lib/session";

// region login-route
export function GET(request: NextRequest) {
  const auth = getAuth();
  const query = request.nextUrl.searchParams;
  try {
    const { url, transaction } = auth.startLogin({
      returnTo: query.get("returnTo") ?? undefined,
      provider: query.get("provider") ?? undefined,
      organizationId: query.get("organization_id") ?? undefined,
      domain: query.get("domain") ?? undefined,
      loginHint: query.get("login_hint") ?? undefined,
    });
    const response = NextResponse.redirect(url, 302);
    response.cookies.set(LOGIN_COOKIE, seal(transaction, auth.config.sessionSecret),
      { ...cookieOptions(auth.config.appUrl), maxAge: LOGIN_MAX_AGE });
    return response;
  } catch (error) {
    if (error instanceof LoginFailed) return htmlPage(400, "Login failed", `<p>${escape(error.message)}</p>`);
    throw error;
  }
}
// endregion login-route
