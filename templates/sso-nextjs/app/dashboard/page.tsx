import { redirect } from "next/navigation";
import { rows } from "@/lib/db";
import { currentUser } from "@/lib/http";

export default async function Dashboard() {
  const user = await currentUser();
  if (!user) redirect("/login");
  const projects = rows<{ id: number; name: string }>("SELECT id, name FROM projects WHERE organization_id = ?",
    [user.organization_id]);
  return (
    <main>
      <h1>{user.org_name}</h1>
      <p id="who">Signed in as {user.email} ({user.role})</p>
      <ul id="projects">{projects.map((p) => <li key={p.id}>{p.name}</li>)}</ul>
      {user.role === "admin" && <p><a href="/admin" id="admin">Organization settings</a></p>}
      <form method="post" action="/logout"><button id="logout">Sign out</button></form>
    </main>
  );
}
