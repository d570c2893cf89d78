// The MCP TypeScript SDK's client, v1 (@modelcontextprotocol/sdk) or v2 (@modelcontextprotocol/client),
// against an MCP server protected by Scalekit: discovery, registration, PKCE with `resource`, the login
// (browser.mjs), a tool call, and a step-up for a tool that needs more scope.
//
//   node ts_client.mjs v1|v2 MCP_URL TOOL [WRITE_TOOL WRITE_ARGS_JSON]
//
// Prints one JSON line: the tool results and every authorization request the client made. Exits 1 with
// `error: <Class>: <message>` on stderr when the client fails.
import { randomUUID } from 'node:crypto';

import { logIn, loginFromEnv } from './browser.mjs';

const [sdk, serverUrl, tool, writeTool, writeArgs] = process.argv.slice(2);
const REDIRECT_URL = 'http://127.0.0.1:33418/callback'; // never listened on: the login stops at it

const { Client, StreamableHTTPClientTransport, UnauthorizedError } = sdk === 'v2'
    ? await import('@modelcontextprotocol/client')
    : {
        ...await import('@modelcontextprotocol/sdk/client/index.js'),
        ...await import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
        ...await import('@modelcontextprotocol/sdk/client/auth.js')
    };

class MemoryProvider {
    authorizations = [];
    callback = undefined;
    get redirectUrl() { return REDIRECT_URL; }
    get clientMetadata() {
        return {
            client_name: `scalekit-auth real-client test (TS SDK ${sdk})`, redirect_uris: [REDIRECT_URL],
            grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
            token_endpoint_auth_method: 'none'
        };
    }
    state() { return (this.expectedState = randomUUID()); }
    clientInformation() { return this.client; }
    saveClientInformation(client) { this.client = client; }
    tokens() { return this.savedTokens; }
    saveTokens(tokens) { this.savedTokens = tokens; }
    saveCodeVerifier(verifier) { this.verifier = verifier; }
    codeVerifier() { return this.verifier; }
    saveDiscoveryState(state) { this.discovery = state; }
    discoveryState() { return this.discovery; }
    async redirectToAuthorization(url) {
        this.authorizations.push(Object.fromEntries(url.searchParams));
        this.callback = await logIn(url, REDIRECT_URL, loginFromEnv());
    }
}

const provider = new MemoryProvider();
let transport;
let client;

// After a login: check state, then let the SDK redeem the code (v2 also checks RFC 9207 `iss`).
async function finishLogin() {
    const params = provider.callback?.searchParams;
    provider.callback = undefined;
    if (!params) throw new Error('the SDK asked for a login but did not open one');
    if (params.get('error')) throw new Error(`the authorization server answered ${params.get('error')}`);
    if (params.get('state') !== provider.expectedState) throw new Error('the callback state does not match');
    await (sdk === 'v2' ? transport.finishAuth(params) : transport.finishAuth(params.get('code')));
}

async function connect() {
    for (let attempt = 0; attempt < 3; attempt++) {
        transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
        client = new Client({ name: 'scalekit-auth-real-client-test', version: '1.0.0' });
        try {
            await client.connect(transport);
            return;
        } catch (error) {
            if (!(error instanceof UnauthorizedError)) throw error;
            await finishLogin();
        }
    }
    throw new Error('still unauthorized after 3 logins');
}

// A call that may need a login first (401) or a step-up (403 insufficient_scope).
async function call(name, args) {
    for (let attempt = 0; attempt < 3; attempt++) {
        try {
            const result = await client.callTool({ name, arguments: args });
            const text = result.content?.map(part => part.text ?? '').join(' ');
            if (result.isError) throw new Error(`${name} answered an error: ${text}`);
            return text;
        } catch (error) {
            if (!(error instanceof UnauthorizedError)) throw error;
            await finishLogin();
        }
    }
    throw new Error(`${name}: still unauthorized after 3 logins`);
}

try {
    await connect();
    const out = { sdk, tool_result: await call(tool, {}) };
    const loginsBefore = provider.authorizations.length;
    if (writeTool) {
        out.write_result = await call(writeTool, JSON.parse(writeArgs ?? '{}'));
        out.stepped_up = provider.authorizations.length > loginsBefore;
    }
    out.authorizations = provider.authorizations.map(({ resource, scope, code_challenge_method }) =>
        ({ resource, scope, code_challenge_method }));
    out.token_scope = provider.savedTokens?.scope;
    console.log(JSON.stringify(out));
    await client.close();
} catch (error) {
    console.error(`error: ${error?.constructor?.name}: ${error?.message}`);
    process.exit(1);
}
