// The MCP server: two tools, each needing its own Scalekit scope.
import type { AuthInfo } from '@modelcontextprotocol/server';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';

import { audit, needsScope } from './scalekit';

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

// Stateless: each request carries its own token and gets a fresh server, so no session outlives its user.
export const mcpHandler = createMcpHandler(() => buildServer());
