import { currentUser } from "@/lib/http";

export async function GET() {
  const user = await currentUser();
  if (!user) return Response.json({ error: "not signed in" }, { status: 401 });
  return Response.json({ id: user.id, email: user.email, name: user.name, role: user.role, organization: user.org_slug });
}
