// Drives every management call the docs use through the unmodified @scalekit-sdk/node against a local
// Scalekit environment (SCALEKIT_ENVIRONMENT_URL...), and prints one JSON object of what it saw.
// Errors are recorded as {name, errorCode, httpStatus}; tests/local_env/test_management_node.py asserts.
import { ScalekitClient } from '@scalekit-sdk/node';

const sk = new ScalekitClient(process.env.SCALEKIT_ENVIRONMENT_URL!, process.env.SCALEKIT_CLIENT_ID!, process.env.SCALEKIT_CLIENT_SECRET!);
const ACME = 'org_70000000000001001';
const GLOBEX = 'org_70000000000001002';
const ACME_SAML = 'conn_70000000000002001';
const ACME_DIR = 'dir_70000000000004001';
const sid = process.env.ALICE_SID!;
const aliceId = process.env.ALICE_ID!;

async function err(fn: () => Promise<unknown>) {
  try {
    await fn();
    return { raised: false };
  } catch (e: any) {
    return { name: e?.constructor?.name ?? typeof e, errorCode: e?.errorCode, httpStatus: e?.httpStatus, text: typeof e === 'string' ? e : undefined };
  }
}

async function main() {
  const out: Record<string, unknown> = {};
  const errors: Record<string, unknown> = {};

  // Organizations
  const created = await sk.organization.createOrganization('Hooli', { externalId: 'hooli', slug: 'hooli' });
  const orgId = created.organization!.id;
  const byExt = await sk.organization.getOrganizationByExternalId('hooli');
  const upd = await sk.organization.updateOrganization(orgId, { displayName: 'Hooli XYZ', metadata: { plan: 'pro' } });
  const page1 = await sk.organization.listOrganization({ pageSize: 2 });
  const page2 = await sk.organization.listOrganization({ pageSize: 2, pageToken: page1.nextPageToken });
  const settings = await sk.organization.updateOrganizationSettings(orgId, { features: [{ name: 'sso', enabled: true }] });
  const ums = await sk.organization.upsertUserManagementSettings(orgId, { maxAllowedUsers: 25 });
  const umsGet = await sk.organization.getOrganizationUserManagementSetting(orgId);
  const policyBefore = await sk.organization.getOrganizationSessionPolicy(orgId);
  const policy = await sk.organization.updateOrganizationSessionPolicy(orgId, {
    policySource: 'CUSTOM', absoluteSessionTimeout: 8, absoluteSessionTimeoutUnit: 'HOURS', idleSessionTimeoutEnabled: true,
    idleSessionTimeout: 15, idleSessionTimeoutUnit: 'MINUTES',
  } as any);
  const link = await sk.organization.generatePortalLink(orgId);
  const search = await sk.organization.searchOrganization('hooli');
  out.organizations = {
    created: created.organization!.displayName, byExt: byExt.organization!.id === orgId, updated: upd.organization!.displayName,
    metadata: upd.organization!.metadata, page1: page1.organizations.length, total: page1.totalSize,
    page2First: page2.organizations[0]?.id !== page1.organizations[0]?.id, features: settings.organization!.settings!.features.map((f) => [f.name, f.enabled]),
    maxUsers: ums?.maxAllowedUsers, maxUsersGet: umsGet.settings?.maxAllowedUsers, policyBefore: policyBefore.policySource,
    policy: [policy.policySource, policy.absoluteSessionTimeout, policy.idleSessionTimeout, policy.idleSessionTimeoutEnabled],
    link: { id: Boolean(link.id), location: link.location, expires: Boolean(link.expireTime) }, search: search.organizations.map((o) => o.id === orgId),
  };
  errors.orgNotFound = await err(() => sk.organization.getOrganization('org_404404404404404'));
  errors.orgDuplicate = await err(() => sk.organization.createOrganization('Again', { externalId: 'hooli' }));
  errors.orgEmptyName = await err(() => sk.organization.createOrganization(' '));
  errors.orgPageSize = await err(() => sk.organization.listOrganization({ pageSize: 1000 }));

  // Connections
  const conn = await sk.connection.getConnection(ACME, ACME_SAML);
  const byOrg = await sk.connection.listConnections(ACME);
  const byDomain = await sk.connection.listConnectionsByDomain('globex.test');
  const disabled = await sk.connection.disableConnection(ACME, ACME_SAML);
  const enabled = await sk.connection.enableConnection(ACME, ACME_SAML);
  out.connections = { id: conn.connection!.id, byOrg: byOrg.connections.map((c) => c.id), byDomain: byDomain.connections.map((c) => c.organizationId),
    toggled: [disabled.enabled, enabled.enabled] };
  errors.connNotFound = await err(() => sk.connection.getConnection(GLOBEX, ACME_SAML));

  // Domains
  const dom = await sk.domain.createDomain(orgId, 'hooli.test');
  const domGet = await sk.domain.getDomain(orgId, dom.domain!.id);
  const domList = await sk.domain.listDomains(orgId);
  out.domains = { name: domGet.domain!.domain, listed: domList.domains.map((d) => d.domain) };
  errors.domainDuplicate = await err(() => sk.domain.createDomain(orgId, 'hooli.test'));
  errors.domainInvalid = await err(() => sk.domain.createDomain(orgId, 'no spaces allowed'));
  await sk.domain.deleteDomain(orgId, dom.domain!.id);
  errors.domainGone = await err(() => sk.domain.getDomain(orgId, dom.domain!.id));

  // Directories
  const dirs = await sk.directory.listDirectories(ACME);
  const dir = await sk.directory.getDirectory(ACME, ACME_DIR);
  const primary = await sk.directory.getPrimaryDirectoryByOrganizationId(ACME);
  const dirUsers = await sk.directory.listDirectoryUsers(ACME, ACME_DIR, { pageSize: 2 });
  const dirGroups = await sk.directory.listDirectoryGroups(ACME, ACME_DIR, { includeDetail: true });
  out.directories = { ids: dirs.directories.map((d) => d.id), name: dir.directory!.name, primary: primary.id,
    users: dirUsers.users.map((u) => u.email), usersTotal: dirUsers.totalSize, next: dirUsers.nextPageToken,
    groups: dirGroups.groups.map((g) => g.displayName) };
  errors.dirNotFound = await err(() => sk.directory.getDirectory(GLOBEX, ACME_DIR));
  errors.noPrimary = await err(() => sk.directory.getPrimaryDirectoryByOrganizationId(GLOBEX));

  // Users and memberships
  const made = await sk.user.createUserAndMembership(orgId, { email: 'hank@hooli.test', externalId: 'crm-hank',
    userProfile: { firstName: 'Hank', lastName: 'Hill' }, sendInvitationEmail: false });
  const userId = made.user!.id;
  const got = await sk.user.getUser(userId);
  const gotExt = await sk.user.getUserByExternalId('crm-hank');
  const updated = await sk.user.updateUser(userId, { userProfile: { firstName: 'Henry' }, metadata: { team: 'ops' } } as any);
  const listed = await sk.user.listUsers({ pageSize: 100 });
  const orgUsers = await sk.user.listOrganizationUsers(orgId, { pageSize: 10 });
  const member = await sk.user.createMembership(GLOBEX, userId, { roles: ['member'], sendInvitationEmail: false });
  const assigned = await sk.user.assignUserRoles(GLOBEX, userId, ['admin']);
  await sk.user.removeUserRole(GLOBEX, userId, 'member');
  const roles = await sk.user.listUserRoles(GLOBEX, userId);
  const perms = await sk.user.listUserPermissions(GLOBEX, userId);
  const changed = await sk.user.updateMembership(GLOBEX, userId, { roles: ['member'] });
  await sk.user.deleteMembership(GLOBEX, userId);
  const afterDelete = await sk.user.getUser(userId);
  out.users = { email: made.user!.email, roles: made.user!.memberships[0].roles.map((r) => r.name), got: got.user!.userProfile?.givenName,
    ext: gotExt.user!.id === userId, updated: [updated.user!.userProfile?.givenName, updated.user!.metadata.team],
    listed: listed.users.some((u) => u.id === userId), orgUsers: orgUsers.users.map((u) => u.email),
    memberships: member.user!.memberships.map((m) => m.organizationId).sort(), assigned: assigned.roles.map((r) => r.name),
    rolesAfterRemove: roles.roles.map((r) => r.name), perms: perms.permissions.map((p) => p.name).sort(),
    changed: changed.user!.memberships.find((m) => m.organizationId === GLOBEX)!.roles.map((r) => r.name),
    membershipsAfterDelete: afterDelete.user!.memberships.map((m) => m.organizationId) };
  errors.userDuplicate = await err(() => sk.user.createUserAndMembership(orgId, { email: 'hank@hooli.test', sendInvitationEmail: false }));
  errors.userBadEmail = await err(() => sk.user.createUserAndMembership(orgId, { email: 'nope', sendInvitationEmail: false }));
  errors.userBadRole = await err(() => sk.user.assignUserRoles(orgId, userId, ['wizard']));
  await sk.user.deleteUser(userId);
  errors.userGone = await err(() => sk.user.getUser(userId));

  // Roles and permissions
  await sk.permission.createPermission({ name: 'billing:read', description: 'Read billing' } as any);
  await sk.permission.createPermission({ name: 'billing:write', description: 'Write billing' } as any);
  const perm = await sk.permission.getPermission('billing:read');
  const permList = await sk.permission.listPermissions(undefined, 100);
  const role = await sk.role.createRole({ name: 'billing_viewer', displayName: 'Billing viewer', permissions: ['billing:read'] } as any);
  await sk.role.createRole({ name: 'billing_admin', displayName: 'Billing admin', extends: 'billing_viewer', permissions: ['billing:write'] } as any);
  const roleGet = await sk.role.getRole('billing_admin');
  const roleList = await sk.role.listRoles();
  const roleUpd = await sk.role.updateRole('billing_viewer', { displayName: 'Billing reader' } as any);
  await sk.permission.addPermissionsToRole('billing_viewer', ['users:read']);
  const rolePerms = await sk.permission.listRolePermissions('billing_viewer');
  await sk.permission.removePermissionFromRole('billing_viewer', 'users:read');
  const effective = await sk.permission.listEffectiveRolePermissions('billing_admin');
  const orgRole = await sk.role.createOrganizationRole(ACME, { name: 'acme_billing', displayName: 'Acme billing', permissions: ['billing:read'] } as any);
  const orgRoles = await sk.role.listOrganizationRoles(ACME);
  out.roles = { perm: perm.permission!.description, permListed: permList.permissions.some((p) => p.name === 'billing:write'),
    role: role.role!.name, extends: roleGet.role!.extends, listed: roleList.roles.map((r) => r.name).includes('billing_admin'),
    updated: roleUpd.role!.displayName, rolePerms: rolePerms.permissions.map((p) => p.name), effective: effective.permissions.map((p) => p.name),
    orgRole: orgRole.role!.isOrgRole, orgRoles: orgRoles.roles.map((r) => r.name).includes('acme_billing') };
  errors.roleDuplicate = await err(() => sk.role.createRole({ name: 'billing_viewer' } as any));
  errors.roleMissing = await err(() => sk.role.getRole('nobody'));
  errors.permMissing = await err(() => sk.permission.getPermission('no:such'));
  errors.roleBadName = await err(() => sk.role.createRole({ name: 'bad name' } as any));
  await sk.role.deleteRole('billing_admin');
  await sk.permission.deletePermission('billing:write');
  errors.roleGone = await err(() => sk.role.getRole('billing_admin'));

  // Sessions (ALICE_SID: a login the test made through the HTTP endpoints)
  const session = await sk.session.getSession(sid);
  const active = await sk.session.getUserSessions(aliceId, { filter: { status: ['ACTIVE'] } });
  const revoked = await sk.session.revokeSession(sid);
  const afterRevoke = await sk.session.getSession(sid);
  const all = await sk.session.revokeAllUserSessions(aliceId);
  out.sessions = { user: session.userId === aliceId, status: session.status, org: session.organizationId,
    active: active.sessions.map((s) => s.sessionId).includes(sid), revoked: revoked.revokedSession?.status, after: afterRevoke.status,
    revokedAll: all.totalRevoked };
  errors.sessionMissing = await err(() => sk.session.getSession('ses_404404404404404'));

  // M2M clients
  const m2m = await sk.m2m.createOrganizationClient(ACME, { name: 'Billing sync', scopes: ['billing:read'], audience: ['https://billing.acme.test'],
    customClaims: { team: 'finance' } } as any);
  const clientId = m2m.client!.clientId;
  const tokenFor = async (secret: string) => {
    const res = await fetch(`${process.env.SCALEKIT_ENVIRONMENT_URL}/oauth/token`, { method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }) });
    return { status: res.status, body: await res.json() };
  };
  const tok = await tokenFor(m2m.plainSecret);
  const claims = JSON.parse(Buffer.from(tok.body.access_token.split('.')[1], 'base64url').toString());
  const m2mGet = await sk.m2m.getOrganizationClient(ACME, clientId);
  const m2mList = await sk.m2m.listOrganizationClients(ACME, { pageSize: 10 } as any);
  const m2mUpd = await sk.m2m.updateOrganizationClient(ACME, clientId, { name: 'Billing sync v2' } as any);
  const extra = await sk.m2m.addOrganizationClientSecret(ACME, clientId);
  await sk.m2m.removeOrganizationClientSecret(ACME, clientId, m2m.client!.secrets[0].id);
  const oldSecret = await tokenFor(m2m.plainSecret);
  const newSecret = await tokenFor(extra.plainSecret);
  await sk.m2m.deleteOrganizationClient(ACME, clientId);
  out.m2m = { plainSecret: Boolean(m2m.plainSecret), token: tok.status, claims: [claims.sub === clientId, claims.oid, claims.scopes, claims.aud, claims.custom_claims?.team, claims.team ?? null],
    got: m2mGet.client!.name, listed: m2mList.clients.some((c) => c.clientId === clientId), updated: m2mUpd.client!.name,
    oldSecret: oldSecret.body.error, newSecret: newSecret.status };
  errors.m2mGone = await err(() => sk.m2m.getOrganizationClient(ACME, clientId));

  await sk.organization.deleteOrganization(orgId);
  errors.orgGone = await err(() => sk.organization.getOrganization(orgId));
  out.errors = errors;
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
