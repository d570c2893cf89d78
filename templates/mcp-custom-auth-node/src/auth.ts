// Scalekit wiring: configuration, protected-resource metadata, the bearer-token check and per-tool scopes.
import type { AuthInfo, ScopeChallengeHandler } from '@modelcontextprotocol/server';
import type { NextFunction, Request, Response } from 'express';
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { ZodType } from 'zod';

// region config
function required(name: string): string {
    const value = process.env[name]?.trim();
    if (!value) {
        console.error(`error: ${name} is not set (see .env.example)`);
        process.exit(2);
    }
    return value;
}

export const port = Number(process.env.PORT ?? 8000);
const environmentUrl = required('SCALEKIT_ENVIRONMENT_URL').replace(/\/+$/, '');
const resourceId = required('SCALEKIT_RESOURCE_ID'); // res_..., from the MCP server's page in the dashboard
// The server's public origin; the MCP endpoint is APP_URL + /mcp, as registered in Scalekit.
const appUrl = (process.env.APP_URL ?? `http://localhost:${port}`).replace(/\/+$/, '');
const resourceMetadataUrl = `${appUrl}/.well-known/oauth-protected-resource/mcp`;
const READ_SCOPE = 'todo:read'; // every request needs it; the 401 challenge asks for it
// endregion config

// region metadata
// RFC 9728 protected-resource metadata: clients read it to find Scalekit's authorization server.
export const protectedResourceMetadata = {
    resource: `${appUrl}/mcp`,
    authorization_servers: [`${environmentUrl}/resources/${resourceId}`],
    scopes_supported: ['todo:read', 'todo:write'],
    bearer_methods_supported: ['header']
};
// endregion metadata

// region verify
// Keys: fetched once and cached; fetched again, at most every 5 s, when a token names an unknown `kid` (rotation).
const keys = createRemoteJWKSet(new URL(`${environmentUrl}/keys`), { cooldownDuration: 5_000 });
// Scalekit issues MCP tokens with the environment URL as `iss` today and is moving to the resource form.
const issuers = [environmentUrl, `${environmentUrl}/resources/${resourceId}`];

// Tokens verified before, by the exact token string, each until its `exp`: checking a signature costs
// more than a tool call. At most 4096 (the oldest goes first).
const verified = new Map<string, AuthInfo>();

export async function verifyAccessToken(token: string): Promise<AuthInfo> {
    const known = verified.get(token);
    if (known && Date.now() / 1000 < known.expiresAt!) return known;
    const { payload } = await jwtVerify(token, keys, {
        issuer: issuers,
        audience: resourceId, // `aud` must contain this server's resource id
        algorithms: ['RS256'],
        requiredClaims: ['exp', 'sub']
    });
    const auth: AuthInfo = {
        token, // stays in this server: never send it to another API
        clientId: String(payload.client_id ?? ''),
        scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
        expiresAt: payload.exp,
        resourceMetadataUrl, // the SDK's 403 scope challenges name it too
        extra: { sub: payload.sub }
    };
    if (verified.size >= 4096) verified.delete(verified.keys().next().value!);
    verified.set(token, auth);
    return auth;
}
// endregion verify

// region middleware
function challenge(res: Response, status: number, error?: string, description?: string) {
    const params = error ? [`error="${error}"`, `error_description="${description}"`] : [];
    params.push(`scope="${READ_SCOPE}"`, `resource_metadata="${resourceMetadataUrl}"`);
    res.status(status).set('WWW-Authenticate', `Bearer ${params.join(', ')}`)
        .json({ error: error ?? 'unauthorized', error_description: description ?? 'Send a Bearer access token' });
}

// Errors that mean Scalekit's keys could not be read, not that the token is bad.
const keyFetchFailures = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

export async function requireAccessToken(req: Request, res: Response, next: NextFunction): Promise<void> {
    const match = /^Bearer ([^\s,]+)$/i.exec(req.headers.authorization ?? '');
    if (!match || 'access_token' in req.query) { // a token in the URL leaks into logs: never accept one
        return challenge(res, 401);
    }
    let auth: AuthInfo;
    try {
        auth = await verifyAccessToken(match[1]);
    } catch (error) {
        if (error instanceof errors.JOSEError && !keyFetchFailures.has(error.code)) {
            return challenge(res, 401, 'invalid_token', 'The access token is invalid or expired');
        }
        console.error(`cannot verify tokens: ${(error as Error).message}`);
        res.status(503).set('Retry-After', '5').json({ error: 'temporarily_unavailable' });
        return;
    }
    if (!auth.scopes.includes(READ_SCOPE)) {
        return challenge(res, 403, 'insufficient_scope', `This server needs the ${READ_SCOPE} scope`);
    }
    (req as Request & { auth: AuthInfo }).auth = auth; // the MCP handler hands it to the tools
    next();
}
// endregion middleware

// region scopes
// One line per tool call: who called which tool, through which client, with which scopes, and the result.
export function audit(auth: AuthInfo | undefined, tool: string, result: 'ok' | 'error' | 'denied'): void {
    console.log(JSON.stringify({
        audit: 'tool_call', sub: auth?.extra?.sub, client_id: auth?.clientId, scope: auth?.scopes.join(' '), tool, result
    }));
}

// Runs for each call of a tool before the SDK checks its arguments. A tool that needs more than READ_SCOPE
// answers 403 insufficient_scope naming every scope it needs (with resource_metadata), so the client asks
// the user for them and retries: a step-up. Calls refused here or for bad arguments get their audit line here.
export function beforeCall(tool: string, scope?: string, args?: ZodType): ScopeChallengeHandler {
    return ({ request, authInfo }) => {
        if (scope && !authInfo?.scopes.includes(scope)) {
            audit(authInfo, tool, 'denied');
            return { scopes: [READ_SCOPE, scope] };
        }
        if (args && !args.safeParse(request.params?.arguments ?? {}).success) audit(authInfo, tool, 'error');
        return undefined;
    };
}
// endregion scopes
