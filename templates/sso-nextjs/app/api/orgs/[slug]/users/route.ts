import { rows } from "@/lib/db";
import { orgAdmin } from "@/lib/http";

export async function GET(request: Request, { params }: { params: Promise<{ slug: string }> }) {
  const user = await orgAdmin();
  if (!user) return Response.json({ error: "organization admins only" }, { status: 403 });
  const { slug } = await params;
  if (user.org_slug !== slug) return Response.json({ error: "not found" }, { status: 404 });
  const users = rows<{ active: number }>("SELECT id, email, name, role, active FROM users WHERE organization_id = ?" +
    " ORDER BY id", [user.organization_id]).map((u) => ({ ...u, active: Boolean(u.active) }));
  return Response.json({ organization: slug, users });
}
