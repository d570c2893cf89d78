import { notFound } from "next/navigation";
import { orgAdmin } from "@/lib/http";
import { domains } from "@/lib/sso";

// The organization admin page: SSO onboarding, the admin portal and domain verification.
export default async function Admin() {
  const user = await orgAdmin();
  if (!user) notFound(); // only organization admins see this page
  const title = `${user.org_name}: single sign-on`;
  if (!user.scalekit_organization_id) {
    return <main><h1>{title}</h1><form method="post" action="/admin/sso"><button id="enable-sso">Set up single sign-on</button></form></main>;
  }
  const list = await domains(user.scalekit_organization_id);
  return (
    <main>
      <h1>{title}</h1>
      <form method="post" action="/admin/portal"><button id="portal">Configure SSO and directory sync</button></form>
      <h2>Domains</h2>
      <p>Publish each pending domain&apos;s DNS TXT record; Scalekit then verifies it.</p>
      <table id="domains"><tbody>
        {list.map((d) => (
          <tr key={d.domain}><td>{d.domain}</td><td className="status">{d.status}</td>
            <td><code>{d.txtName}</code> <code>{d.txtValue}</code></td></tr>
        ))}
      </tbody></table>
      <form method="post" action="/admin/domains">
        <input name="domain" id="domain" required placeholder="example.com" /> <button id="add-domain">Add domain</button>
      </form>
    </main>
  );
}
