// The todo MCP server: its tools, each run for the caller the bearer check verified.
import type { AuthInfo, CallToolResult, ServerContext } from '@modelcontextprotocol/server';
import { McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';

import { audit, beforeCall } from './scalekit';
import { mcpEndpoint } from './sessions';

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

export const serveMcp = mcpEndpoint(buildServer);
