import { cookies } from "next/headers";
import { message, signedIn, STATE_COOKIE } from "@/lib/http";
import { finishLogin, SSOError } from "@/lib/sso";

// region callback_route
export async function GET(request: Request) {
  const params = new URL(request.url).searchParams;
  const error = params.get("error");
  if (error) return message("Sign in", `Single sign-on failed: ${params.get("error_description") || error}`, 400);
  try {
    const userId = await finishLogin({ code: params.get("code"), state: params.get("state"),
      cookieState: (await cookies()).get(STATE_COOKIE)?.value });
    return signedIn(userId);
  } catch (err) {
    if (err instanceof SSOError) return message("Sign in", err.message, err.status);
    throw err;
  }
}
// endregion callback_route
