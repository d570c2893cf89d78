import { hasPermission, requireUser } from "@/lib/scalekit";

// proxy.ts answers 403 to users without the permission; this page checks again rather than trust it alone.
export default async function Admin() {
  const user = await requireUser("/admin");
  if (!hasPermission(user, "users:write")) {
    return (
      <main>
        <h1>Forbidden</h1>
        <p>
          You need the <code>users:write</code> permission.
        </p>
      </main>
    );
  }
  return (
    <main>
      <h1>Admin</h1>
      <p>
        Only users with <code>users:write</code> see this.
      </p>
    </main>
  );
}
