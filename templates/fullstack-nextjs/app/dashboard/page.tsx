import { requireUser } from "@/lib/scalekit";

export default async function Dashboard() {
  const user = await requireUser("/dashboard");
  return (
    <main>
      <h1>Dashboard</h1>
      <p>
        Hello {user.name} ({user.email}).
      </p>
      <p>
        Organization <code>{user.organizationId ?? "none"}</code>, roles {user.roles.join(", ") || "none"}.
      </p>
      <p>
        <a href="/profile">Profile</a> · <a href="/admin">Admin</a> · <a href="/api/projects">Projects (JSON)</a>
      </p>
    </main>
  );
}
