import { crossSite, message, orgAdmin, redirectTo } from "@/lib/http";
import { addDomain } from "@/lib/sso";

export async function POST(request: Request) {
  const refused = crossSite(request);
  if (refused) return refused;
  const user = await orgAdmin();
  if (!user?.scalekit_organization_id) return message("Forbidden", "Only organization admins with SSO set up can do this.", 403);
  const domain = String((await request.formData()).get("domain") ?? "");
  try {
    await addDomain(user.scalekit_organization_id, domain);
  } catch {
    return message("Domain not added", `${domain} could not be added (invalid, or registered already).`, 400);
  }
  return redirectTo("/admin");
}
