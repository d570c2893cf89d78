import { NextResponse } from "next/server";
import { currentUser } from "@/lib/scalekit";

// region org-data
// Organization-scoped data: the organization comes from the verified token, never from the request.
const PROJECTS: Record<string, string[]> = {
  org_70000000000001001: ["Roadrunner catcher", "Anvil delivery"],
  org_70000000000001002: ["Hammock district"],
};

export async function GET() {
  const user = await currentUser();
  if (!user) return NextResponse.json({ error: "unauthorized" }, { status: 401, headers: { "WWW-Authenticate": "Bearer" } });
  const organizationId = user.organizationId;
  return NextResponse.json({ organizationId, projects: PROJECTS[organizationId ?? ""] ?? [] }, { headers: { "Cache-Control": "no-store" } });
}
// endregion org-data
