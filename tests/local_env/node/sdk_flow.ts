// Drives the unmodified @scalekit-sdk/node against the local Scalekit environment named by
// SCALEKIT_ENVIRONMENT_URL (started with --auto-login) and prints one JSON object with what it saw.
// The pytest side asserts on that output.
import { createHash, randomBytes } from 'node:crypto';
import { ScalekitClient, ScalekitNotFoundException } from '@scalekit-sdk/node';

const url = process.env.SCALEKIT_ENVIRONMENT_URL!;
const clientId = process.env.SCALEKIT_CLIENT_ID!;
const clientSecret = process.env.SCALEKIT_CLIENT_SECRET!;
const orgId = process.env.TEST_ORG_ID!;
const redirectUri = 'http://localhost:3000/auth/callback';

const b64url = (buf: Buffer) => buf.toString('base64url');

async function login(client: ScalekitClient, pkce: boolean) {
  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(12));
  const authUrl = client.getAuthorizationUrl(redirectUri, {
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    state,
    nonce: 'nonce-' + state,
    ...(pkce ? { codeChallenge: b64url(createHash('sha256').update(verifier).digest()), codeChallengeMethod: 'S256' } : {}),
  });
  const res = await fetch(authUrl, { redirect: 'manual' });
  const location = new URL(res.headers.get('location') ?? 'about:blank');
  const code = location.searchParams.get('code')!;
  const result = await client.authenticateWithCode(code, redirectUri, pkce ? { codeVerifier: verifier } : undefined);
  // The environment's session cookie, which a browser would send back on the logout redirect.
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return { authorizeStatus: res.status, stateEchoed: location.searchParams.get('state') === state, result, cookie };
}

async function main() {
  const client = new ScalekitClient(url, clientId, clientSecret);
  const out: Record<string, unknown> = {};

  const withPkce = await login(client, true);
  out.pkce = {
    authorizeStatus: withPkce.authorizeStatus,
    stateEchoed: withPkce.stateEchoed,
    email: withPkce.result.user.email,
    userId: withPkce.result.user.id,
    hasRefreshToken: Boolean(withPkce.result.refreshToken),
    expiresIn: withPkce.result.expiresIn,
  };
  const plain = await login(client, false);
  out.noPkce = { email: plain.result.user.email, hasIdToken: Boolean(plain.result.idToken) };

  const claims = await client.validateToken<Record<string, unknown>>(withPkce.result.accessToken, {
    issuer: url,
    audience: [clientId],
  });
  out.claims = { iss: claims.iss, sub: claims.sub, oid: claims.oid, sid: claims.sid, scope: claims.scope, roles: claims.roles };
  // requiredScopes reads a `scopes` array, which user access tokens do not carry.
  out.requiredScopesOnUserToken = await client.validateAccessToken(withPkce.result.accessToken, { requiredScopes: ['openid'] });
  out.validAccess = await client.validateAccessToken(withPkce.result.accessToken);
  out.wrongAudience = await client.validateAccessToken(withPkce.result.accessToken, { audience: ['someone-else'] });
  out.garbage = await client.validateAccessToken('not-a-token');

  const refreshed = await client.refreshAccessToken(withPkce.result.refreshToken!);
  out.refresh = {
    rotated: refreshed.refreshToken !== withPkce.result.refreshToken,
    newAccessValid: await client.validateAccessToken(refreshed.accessToken),
  };

  const logoutUrl = client.getLogoutUrl({
    idTokenHint: withPkce.result.idToken,
    postLogoutRedirectUri: 'http://localhost:3000/',
    state: 'bye',
  });
  const logout = await fetch(logoutUrl, { redirect: 'manual', headers: { cookie: withPkce.cookie } });
  out.logout = { status: logout.status, location: logout.headers.get('location') };
  try {
    await client.refreshAccessToken(refreshed.refreshToken);
    out.refreshAfterLogout = 'accepted';
  } catch (err) {
    out.refreshAfterLogout = 'rejected';
  }

  const m2m = await client.getClientAccessToken();
  out.clientToken = { valid: await client.validateAccessToken(m2m) };

  const got = await client.organization.getOrganization(orgId);
  out.getOrganization = { id: got.organization?.id, displayName: got.organization?.displayName, externalId: got.organization?.externalId };
  const listed = await client.organization.listOrganization({ pageSize: 10 });
  out.listOrganization = { ids: listed.organizations.map((o) => o.id), totalSize: listed.totalSize };
  try {
    await client.organization.getOrganization('org_404404404404404');
    out.notFound = { raised: false };
  } catch (err: any) {
    out.notFound = {
      raised: true,
      name: err?.constructor?.name,
      isNotFound: err instanceof ScalekitNotFoundException,
      errorCode: err?.errorCode,
      httpStatus: err?.httpStatus,
    };
  }
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
