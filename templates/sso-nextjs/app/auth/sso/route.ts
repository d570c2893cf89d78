import { row } from "@/lib/db";
import { message, toIdentityProvider } from "@/lib/http";
import { hasSso, SSOError, startIdpInitiatedLogin, startLogin } from "@/lib/sso";

// region sso_start
// Start an SSO login for an email (its domain picks the connection), for an organization slug, or
// from an IdP-initiated login token (sent here by app/login/page.tsx).
export async function GET(request: Request) {
  const params = new URL(request.url).searchParams;
  const email = params.get("email"), org = params.get("org"), idpInitiatedLogin = params.get("idp_initiated_login");
  if (idpInitiatedLogin) {
    try {
      return toIdentityProvider(await startIdpInitiatedLogin(idpInitiatedLogin));
    } catch (err) {
      if (err instanceof SSOError) return message("Sign in", err.message, err.status);
      throw err;
    }
  }
  if (org) {
    const found = row<{ scalekit_organization_id: string | null }>(
      "SELECT scalekit_organization_id FROM organizations WHERE slug = ?", [org]);
    if (!found?.scalekit_organization_id) return message("Sign in", "This organization does not use single sign-on.", 404);
    return toIdentityProvider(startLogin({ organizationId: found.scalekit_organization_id }));
  }
  try {
    if (!email || !email.includes("@") || !(await hasSso(email))) {
      return message("Sign in", "Single sign-on is not set up for this email domain.", 400);
    }
  } catch (err) {
    if (err instanceof SSOError) return message("Sign in", err.message, err.status); // Scalekit is down (503)
    throw err;
  }
  return toIdentityProvider(startLogin({ email: email.trim().toLowerCase() }));
}
// endregion sso_start
