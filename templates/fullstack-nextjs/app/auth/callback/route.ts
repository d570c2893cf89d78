import { NextResponse, type NextRequest } from "next/server";
import { LoginFailed, ScalekitUnavailable, type LoginTransaction } from "@/lib/auth";
import { escape, htmlPage } from "@/lib/pages";
import { getAuth } from "@/lib/scalekit";
import { LOGIN_COOKIE, SESSION_COOKIE, SESSION_MAX_AGE, cookieOptions, seal, unseal } from "@/lib/session";

// region callback-route
export async function GET(request: NextRequest) {
  const auth = getAuth();
  const options = cookieOptions(auth.config.appUrl);
  const transaction = unseal<LoginTransaction>(request.cookies.get(LOGIN_COOKIE)?.value, auth.config.sessionSecret);
  let response: NextResponse;
  try {
    const session = await auth.finishLogin(Object.fromEntries(request.nextUrl.searchParams), transaction);
    response = NextResponse.redirect(`${auth.config.appUrl}${transaction!.returnTo}`, 302);
    response.cookies.set(SESSION_COOKIE, seal(session, auth.config.sessionSecret), { ...options, maxAge: SESSION_MAX_AGE });
  } catch (error) {
    if (error instanceof LoginFailed) {
      response = htmlPage(400, "Login failed", `<p>${escape(error.message)}</p><p><a href="/auth/login">Log in again</a></p>`);
    } else if (error instanceof ScalekitUnavailable) {
      console.error(error.message);
      response = htmlPage(503, "Try again", "<p>The sign-in service is not answering. Try again in a moment.</p>");
    } else {
      throw error;
    }
  }
  // One attempt per login transaction, whatever the outcome.
  response.cookies.set(LOGIN_COOKIE, "", { ...options, maxAge: 0 });
  return response;
}
// endregion callback-route
