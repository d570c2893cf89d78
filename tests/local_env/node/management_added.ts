// The RPCs added for issue #14, through the unmodified @scalekit-sdk/node against a fresh local Scalekit
// environment (SCALEKIT_ENVIRONMENT_URL...): API keys, passwordless (codes read from /_local/mailbox.json),
// passkeys, default roles and role bases, ResendInvite, directory create/delete, app connections and
// events. Prints one JSON object; tests/local_env/test_management_added_node.py asserts on it.
import { ScalekitClient } from '@scalekit-sdk/node';

const url = process.env.SCALEKIT_ENVIRONMENT_URL!;
const sk = new ScalekitClient(url, process.env.SCALEKIT_CLIENT_ID!, process.env.SCALEKIT_CLIENT_SECRET!);
const ACME = 'org_70000000000001001';
const GLOBEX = 'org_70000000000001002';
const ALICE = 'usr_70000000000003001';
const KEY = 'test_apikey_Nb4Vc7Xz1Lk8Jh5Gf2Ds9Ap6Qw3Er0Ty';

async function err(fn: () => Promise<unknown>) {
  try {
    await fn();
    return { raised: false };
  } catch (e: any) {
    return { name: e?.constructor?.name ?? typeof e, errorCode: e?.errorCode, httpStatus: e?.httpStatus };
  }
}

async function mailbox(to: string) {
  const resp = await fetch(`${url}/_local/mailbox.json?to=${encodeURIComponent(to)}`);
  return (await resp.json()).messages as any[];
}

async function main() {
  const out: Record<string, unknown> = {};

  // API keys
  const seeded = await sk.token.validateToken(KEY);
  const made = await sk.token.createToken(ACME, { customClaims: { team: 'ops' }, description: 'Node CI' });
  const listed = await sk.token.listTokens(ACME, { pageSize: 10 });
  const updated = await sk.token.updateToken(made.tokenId, { customClaims: { team: 'sre' } });
  await sk.token.invalidateToken(made.token);
  out.tokens = {
    seeded: [seeded.tokenInfo?.organizationId, seeded.tokenInfo?.userId, seeded.tokenInfo?.customClaims?.environment],
    created: made.tokenId.startsWith('apit_'), listed: listed.tokens.map((t) => t.tokenId).includes(made.tokenId),
    updated: updated.tokenInfo?.customClaims, afterInvalidate: await err(() => sk.token.validateToken(made.token)),
  };

  // Passwordless: code, then a magic link
  const sent = await sk.passwordless.sendPasswordlessEmail('kim@acme.test', { magiclinkAuthUri: 'https://app.test/verify', state: 'n-1' });
  const mail = (await mailbox('kim@acme.test'))[0];
  const verified = await sk.passwordless.verifyPasswordlessEmail({ code: mail.code }, sent.authRequestId);
  const sent2 = await sk.passwordless.sendPasswordlessEmail('lee@acme.test', { magiclinkAuthUri: 'https://app.test/verify' });
  const resent = await sk.passwordless.resendPasswordlessEmail(sent2.authRequestId);
  const link = new URL((await mailbox('lee@acme.test'))[0].link);
  const byLink = await sk.passwordless.verifyPasswordlessEmail({ linkToken: link.searchParams.get('link_token')! });
  out.passwordless = { type: sent.passwordlessType, email: verified.email, state: verified.state, resent: resent.authRequestId === sent2.authRequestId,
    byLink: byLink.email, reuse: await err(() => sk.passwordless.verifyPasswordlessEmail({ code: mail.code }, sent.authRequestId)) };

  // Passkeys
  const keys = await sk.webauthn.listCredentials(ALICE);
  const renamed = await sk.webauthn.updateCredential('pk_alice_laptop', 'Node laptop');
  const deleted = await sk.webauthn.deleteCredential('pk_alice_laptop');
  out.webauthn = { listed: keys.credentials.map((c) => c.displayName), renamed: renamed.credential?.displayName, deleted: deleted.success,
    after: (await sk.webauthn.listCredentials(ALICE)).credentials.length };

  // Roles
  await sk.role.createRole({ name: 'observer', displayName: 'Observer' } as any);
  const defaults = await sk.role.updateDefaultRoles({ defaultMemberRole: 'observer' });
  const orgDefault = await sk.role.updateDefaultOrganizationRoles(GLOBEX, 'member');
  await sk.role.createRole({ name: 'observer_plus', displayName: 'Observer+', extends: 'observer' } as any);
  await sk.role.deleteRoleBase('observer_plus');
  await sk.role.createOrganizationRole(ACME, { name: 'acme_temp', displayName: 'Temp', extends: 'member' } as any);
  await sk.role.deleteOrganizationRoleBase(ACME, 'acme_temp');
  out.roles = { member: defaults.defaultMember?.name, orgMember: orgDefault.defaultMember?.name,
    base: (await sk.role.getRole('observer_plus')).role?.extends ?? null,
    orgBase: (await sk.role.getOrganizationRole(ACME, 'acme_temp')).role?.extends ?? null };

  // Invitations
  const invited = await sk.user.createUserAndMembership(ACME, { email: 'max@acme.test', sendInvitationEmail: true } as any);
  const resend = await sk.user.resendInvite(ACME, invited.user!.id);
  out.invites = { status: invited.user!.memberships[0].membershipStatus, resent: resend.invite?.resentCount, mails: (await mailbox('max@acme.test')).length };

  // Directories, app connections, events
  const dir = await sk.directory.createDirectory(GLOBEX, { directoryType: 1, directoryProvider: 1 } as any);
  await sk.directory.deleteDirectory(GLOBEX, dir.directory!.id);
  const apps = await sk.connection.listAppConnections({ pageSize: 5 });
  const events = await sk.events.listEventsPaginated(10, undefined, { eventTypes: ['user.created'] } as any);
  out.misc = { dir: dir.directory!.id.startsWith('dir_'), dirGone: await err(() => sk.directory.getDirectory(GLOBEX, dir.directory!.id)),
    apps: apps.connections.map((c) => c.keyId), events: events.events.map((e) => e.type) };

  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
