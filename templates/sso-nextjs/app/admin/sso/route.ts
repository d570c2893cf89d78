import { type Organization, row } from "@/lib/db";
import { crossSite, message, orgAdmin, redirectTo } from "@/lib/http";
import { enableSso } from "@/lib/sso";

export async function POST(request: Request) {
  const refused = crossSite(request);
  if (refused) return refused;
  const user = await orgAdmin();
  if (!user) return message("Forbidden", "Only organization admins can do this.", 403);
  await enableSso(row<Organization>("SELECT * FROM organizations WHERE id = ?", [user.organization_id])!);
  return redirectTo("/admin");
}
