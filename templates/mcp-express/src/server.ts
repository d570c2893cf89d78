// A todo MCP server on Express, protected by Scalekit. Run: npm run build && npm start
import type { AuthInfo, CallToolResult, ServerContext } from '@modelcontextprotocol/server';
import { McpServer } from '@modelcontextprotocol/server';
import express from 'express';
import * as z from 'zod';

import { audit, beforeCall, port, protectedResourceMetadata, requireAccessToken } from './auth.js';
import { mcpEndpoint } from './sessions.js';

const todos = new Map<string, string[]>(); // per user (the token's sub); a real server keeps them in a database

// region tools
const AddTodo = z.object({ title: z.string().min(1).max(200) });

function buildServer(): McpServer {
    const server = new McpServer({ name: 'Todo MCP server', version: '1.0.0' });

    server.registerTool('whoami', {
        description: 'Who is calling: the subject, client and scopes of the access token'
    }, async ctx => run(ctx, 'whoami', auth => ({
        sub: auth?.extra?.sub, client_id: auth?.clientId, scope: auth?.scopes.join(' ')
    })));

    // region scoped-tool
    server.registerTool('add_todo', {
        description: 'Add a todo for the caller (needs the todo:write scope)',
        inputSchema: AddTodo,
        scopeChallenge: beforeCall('add_todo', 'todo:write', AddTodo)
    }, async ({ title }, ctx) => run(ctx, 'add_todo', async auth => {
        const owner = String(auth?.extra?.sub);
        todos.set(owner, [...(todos.get(owner) ?? []), title]);
        await sendToTodoApi({ owner, title });
        return { owner, todos: todos.get(owner) };
    }));
    // endregion scoped-tool

    return server;
}

// Runs a tool for the caller the bearer check verified, and writes its audit line.
async function run(ctx: ServerContext, tool: string, work: (auth?: AuthInfo) => unknown): Promise<CallToolResult> {
    const auth = ctx.http?.authInfo;
    try {
        const result = await work(auth);
        audit(auth, tool, 'ok');
        return { content: [{ type: 'text', text: JSON.stringify(result) }] };
    } catch (error) {
        audit(auth, tool, 'error');
        throw error;
    }
}
// endregion tools

// region downstream
// Tells the downstream todo API, with that API's own credential. The MCP access token is never
// forwarded: it was issued for this server only (audience), and passing it on is forbidden.
async function sendToTodoApi(todo: { owner: string; title: string }): Promise<void> {
    const url = process.env.TODO_API_URL;
    if (!url) return;
    const key = process.env.TODO_API_KEY;
    const response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify(todo),
        signal: AbortSignal.timeout(10_000)
    });
    if (!response.ok) throw new Error(`the todo API answered HTTP ${response.status}`);
}
// endregion downstream

const app = express();
app.disable('x-powered-by');

// region routes
// Metadata at the path-suffixed URL (RFC 9728) and at the root, where Scalekit's docs look.
for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
    app.get(path, (_req, res) => {
        res.set('Access-Control-Allow-Origin', '*').json(protectedResourceMetadata);
    });
}

// Every request needs a valid token, with or without a session (sessions.ts binds each to its user).
app.all('/mcp', requireAccessToken, express.json({ limit: '1mb' }), mcpEndpoint(buildServer));
// endregion routes

app.get('/healthz', (_req, res) => {
    res.send('ok');
});

// A body that is not JSON gets a JSON-RPC parse error, never an error page with a stack trace.
app.use((error: Error & { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(error.status ?? 500).json({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
});

app.listen(port, '127.0.0.1', () => {
    console.log(`MCP server on http://localhost:${port}/mcp`);
});
