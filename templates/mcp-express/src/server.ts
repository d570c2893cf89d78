// An MCP server on Express: two tools, each needing its own Scalekit scope.
import { toNodeHandler } from '@modelcontextprotocol/node';
import type { AuthInfo } from '@modelcontextprotocol/server';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import express from 'express';
import * as z from 'zod';

import { audit, needsScope, port, protectedResourceMetadata, requireAccessToken } from './auth.js';

const todos = new Map<string, string[]>(); // per user (the token's `sub`); in memory for the template

// region tools
function buildServer(): McpServer {
    const server = new McpServer({ name: 'todo', version: '1.0.0' });

    server.registerTool('whoami', {
        description: 'Who is calling: the user and client from the access token',
        scopeChallenge: needsScope('whoami', 'todo:read')
    }, async ctx => {
        const auth = ctx.http?.authInfo as AuthInfo;
        audit(auth, 'whoami', 'ok');
        const identity = { sub: auth.extra?.sub, client_id: auth.clientId, scopes: auth.scopes };
        return { content: [{ type: 'text', text: JSON.stringify(identity) }] };
    });

    server.registerTool('add_todo', {
        description: "Add an item to the caller's to-do list",
        inputSchema: z.object({ title: z.string().min(1).max(200) }),
        scopeChallenge: needsScope('add_todo', 'todo:write')
    }, async ({ title }, ctx) => {
        const auth = ctx.http?.authInfo as AuthInfo;
        const list = todos.get(String(auth.extra?.sub)) ?? [];
        list.push(title);
        todos.set(String(auth.extra?.sub), list);
        audit(auth, 'add_todo', 'ok');
        return { content: [{ type: 'text', text: JSON.stringify({ added: title, count: list.length }) }] };
    });

    return server;
}
// endregion tools

// region app
const app = express();
app.disable('x-powered-by');

// Metadata at the path-suffixed URL (RFC 9728) and at the root, where Scalekit's docs look.
for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
    app.get(path, (_req, res) => {
        res.set('Access-Control-Allow-Origin', '*').json(protectedResourceMetadata);
    });
}

// Stateless: each request carries its own token and gets a fresh server, so no session outlives its user.
const mcp = toNodeHandler(createMcpHandler(() => buildServer()));
app.all('/mcp', requireAccessToken, (req, res) => mcp(req, res));

app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
});

app.listen(port, '127.0.0.1', () => {
    console.log(`MCP server on http://localhost:${port}/mcp`);
});
// endregion app
