import { rows } from "@/lib/db";
import { currentUser } from "@/lib/http";

export async function GET(request: Request, { params }: { params: Promise<{ slug: string }> }) {
  const user = await currentUser();
  if (!user) return Response.json({ error: "not signed in" }, { status: 401 });
  const { slug } = await params;
  if (user.org_slug !== slug) return Response.json({ error: "not found" }, { status: 404 }); // one tenant never sees another's data
  return Response.json({ organization: slug,
    projects: rows("SELECT id, name FROM projects WHERE organization_id = ?", [user.organization_id]) });
}
