// Scalekit wiring: configuration, protected-resource metadata, the bearer-token check and per-tool scopes.
import type { AuthInfo, ScopeChallengeHandler } from '@modelcontextprotocol/server';
import { requireScopes } from '@modelcontextprotocol/server';
import type { NextFunction, Request, Response } from 'express';
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';

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
const resourceId = required('SCALEKIT_RESOURCE_ID');
// The server's public origin; the MCP endpoint is APP_URL + /mcp, as registered in Scalekit.
const appUrl = (process.env.APP_URL ?? `http://localhost:${port}`).replace(/\/+$/, '');
export const resourceUrl = `${appUrl}/mcp`;
export const resourceMetadataUrl = `${appUrl}/.well-known/oauth-protected-resource/mcp`;
export const scopesSupported = ['todo:read', 'todo:write'];
// endregion config

// region metadata
// RFC 9728 protected-resource metadata: clients read it to find Scalekit's authorization server.
export const protectedResourceMetadata = {
    resource: resourceUrl,
    authorization_servers: [`${environmentUrl}/resources/${resourceId}`],
    scopes_supported: scopesSupported,
    bearer_methods_supported: ['header']
};
// endregion metadata

// region verify
// Keys are fetched once, cached, and fetched again when a token names an unknown `kid` (key rotation).
const keys = createRemoteJWKSet(new URL(`${environmentUrl}/keys`));
// Scalekit issues MCP tokens with the environment URL as `iss` today and is moving to the resource form.
const issuers = [environmentUrl, `${environmentUrl}/resources/${resourceId}`];

export async function verifyAccessToken(token: string): Promise<AuthInfo> {
    const { payload } = await jwtVerify(token, keys, {
        issuer: issuers,
        audience: resourceId, // `aud` must contain this server's resource id
        algorithms: ['RS256'],
        requiredClaims: ['exp', 'sub']
    });
    return {
        token, // stays in this server: call downstream APIs with their own credentials, never with this token
        clientId: String(payload.client_id ?? ''),
        scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
        expiresAt: payload.exp,
        resourceMetadataUrl,
        extra: { sub: payload.sub }
    };
}
// endregion verify

// region middleware
function challenge(res: Response, status: number, error?: string, description?: string): void {
    const params = [
        ...(error ? [`error="${error}"`, `error_description="${description}"`] : []),
        `scope="todo:read"`,
        `resource_metadata="${resourceMetadataUrl}"`
    ];
    res.status(status)
        .set('WWW-Authenticate', `Bearer ${params.join(', ')}`)
        .json(error ? { error, error_description: description } : { error: 'unauthorized' });
}

// Errors that mean Scalekit's keys could not be read, not that the token is bad.
const keyFetchFailures = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

export async function requireAccessToken(req: Request, res: Response, next: NextFunction): Promise<void> {
    if (new URL(req.originalUrl, 'http://x').searchParams.has('access_token')) {
        return challenge(res, 400, 'invalid_request', 'Send the access token in the Authorization header, not the URL');
    }
    const match = /^Bearer ([^\s,]+)$/i.exec(req.headers.authorization ?? '');
    if (!match) return challenge(res, 401);
    try {
        (req as Request & { auth?: AuthInfo }).auth = await verifyAccessToken(match[1]);
    } catch (error) {
        if (error instanceof errors.JOSEError && !keyFetchFailures.has(error.code)) {
            return challenge(res, 401, 'invalid_token', 'The access token is invalid or expired');
        }
        console.error(`cannot verify tokens: ${(error as Error).message}`);
        res.status(503).set('Retry-After', '5').json({ error: 'temporarily_unavailable', error_description: 'Cannot read Scalekit signing keys' });
        return;
    }
    next();
}
// endregion middleware

// region scopes
// One line per tool call: who called which tool, from which client, with which scopes, and how it ended.
export function audit(auth: AuthInfo | undefined, tool: string, result: string): void {
    console.log(JSON.stringify({
        audit: 'tool_call', sub: auth?.extra?.sub, client_id: auth?.clientId, scopes: auth?.scopes, tool, result
    }));
}

// A tool that needs `scope` answers 403 insufficient_scope (with `scope` and `resource_metadata`) without it,
// so the client can ask the user for more and retry.
export function needsScope(tool: string, scope: string): ScopeChallengeHandler {
    const check = requireScopes(scope);
    return async context => {
        const shortfall = await check(context);
        if (shortfall) audit(context.authInfo, tool, 'insufficient_scope');
        return shortfall;
    };
}
// endregion scopes
