import { NextResponse } from "next/server";
import { crossSite, message, orgAdmin } from "@/lib/http";
import { portalLink } from "@/lib/sso";

export async function POST(request: Request) {
  const refused = crossSite(request);
  if (refused) return refused;
  const user = await orgAdmin();
  if (!user?.scalekit_organization_id) return message("Forbidden", "Only organization admins with SSO set up can do this.", 403);
  return NextResponse.redirect(await portalLink(user.scalekit_organization_id), 303);
}
