import { requireUser } from "@/lib/scalekit";

// region profile
export default async function Profile() {
  const user = await requireUser("/profile");
  return (
    <main>
      <h1>Profile</h1>
      <dl>
        <dt>Email</dt>
        <dd>{user.email}</dd>
        <dt>Name</dt>
        <dd>{user.name}</dd>
        <dt>User id</dt>
        <dd>
          <code>{user.sub}</code>
        </dd>
        <dt>Organization</dt>
        <dd>
          <code>{user.oid ?? "none"}</code>
        </dd>
        <dt>Roles</dt>
        <dd>{user.roles.join(", ") || "none"}</dd>
        <dt>Permissions</dt>
        <dd>{user.permissions.join(", ") || "none"}</dd>
        <dt>Custom claims</dt>
        <dd>
          <pre>{JSON.stringify(user.customClaims, null, 2)}</pre>
        </dd>
      </dl>
    </main>
  );
}
// endregion profile
