import { crossSite, message, redirectTo } from "@/lib/http";
import { hasSso } from "@/lib/sso";

// region home_realm_discovery
// Step 1: the email decides. SSO domains go to their identity provider, everyone else to a password.
export async function POST(request: Request) {
  const refused = crossSite(request);
  if (refused) return refused;
  const email = String((await request.formData()).get("email") ?? "").trim().toLowerCase();
  if (!email.includes("@")) return message("Sign in", "Enter your work email address.", 400);
  if (await hasSso(email)) return redirectTo(`/auth/sso?email=${encodeURIComponent(email)}`);
  return redirectTo(`/login?email=${encodeURIComponent(email)}`);
}
// endregion home_realm_discovery
