import { crossSite, message, redirectTo } from "@/lib/http";
import { hasSso, SSOError } from "@/lib/sso";

// region home_realm_discovery
// Step 1: the email decides. SSO domains go to their identity provider, everyone else to a password.
export async function POST(request: Request) {
  const refused = crossSite(request);
  if (refused) return refused;
  const email = String((await request.formData()).get("email") ?? "").trim().toLowerCase();
  if (!email.includes("@")) return message("Sign in", "Enter your work email address.", 400);
  try {
    if (await hasSso(email)) return redirectTo(`/auth/sso?email=${encodeURIComponent(email)}`);
  } catch (err) { // Scalekit is down: a password still works
    if (err instanceof SSOError) return redirectTo(`/login?email=${encodeURIComponent(email)}&sso=unavailable`);
    throw err;
  }
  return redirectTo(`/login?email=${encodeURIComponent(email)}`);
}
// endregion home_realm_discovery
