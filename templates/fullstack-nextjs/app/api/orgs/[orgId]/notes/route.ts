import { NextResponse } from "next/server";
import { apiRoute } from "@/lib/scalekit";

// region org-data
// Organization-scoped data: a user reads the notes of the organization of their session, no other.
const NOTES: Record<string, string[]> = {
  org_70000000000001001: ["Renew the Okta certificate in March"],
  org_70000000000001002: ["Invite the finance team"],
};

export const GET = apiRoute<{ orgId: string }>((user, { orgId }) => {
  if (orgId !== user.oid) return NextResponse.json({ error: "forbidden", message: "Not your organization" }, { status: 403 });
  return NextResponse.json({ organization: orgId, notes: NOTES[orgId] ?? [] });
});
// endregion org-data
