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
        <a href="/profile">Profile</a> · <a href="/api/me">API: me</a> · <a href="/api/admin">API: admin</a> ·{" "}
        <a href={`/api/orgs/${user.oid ?? "none"}/notes`}>API: my organization&apos;s notes</a>
      </p>
    </main>
  );
}
