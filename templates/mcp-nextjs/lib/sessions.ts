// The MCP endpoint. 2025-era clients open a session (initialize, then Mcp-Session-Id on every request):
// each session is bound to the user and client whose token opened it. Requests without a session (the
// 2026-07-28 protocol, or clients that keep none) are served statelessly, each by a fresh server.
// Sessions live in this process's memory: on a serverless host, where requests land on different
// instances, only the stateless path works.
import { randomUUID } from 'node:crypto';

import type { AuthInfo, McpServer } from '@modelcontextprotocol/server';
import { createMcpHandler, isInitializeRequest, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';

// region sessions
const IDLE_MS = 30 * 60_000; // a session unused this long is closed
type Session = { transport: WebStandardStreamableHTTPServerTransport; owner: string; usedAt: number };
const sessions = new Map<string, Session>();
const ownerOf = (auth?: AuthInfo) => `${auth?.extra?.sub} ${auth?.clientId}`;

function refuse(status: number, message: string): Response {
    return Response.json({ jsonrpc: '2.0', error: { code: -32001, message }, id: null }, { status });
}

export function mcpEndpoint(buildServer: () => McpServer) {
    const stateless = createMcpHandler(() => buildServer());
    setInterval(() => {
        for (const session of sessions.values()) {
            if (Date.now() - session.usedAt > IDLE_MS) void session.transport.close();
        }
    }, 60_000).unref();

    return async (request: Request, authInfo?: AuthInfo): Promise<Response> => {
        const id = request.headers.get('mcp-session-id');
        if (id) {
            const session = sessions.get(id);
            if (!session) return refuse(404, 'Session not found');
            if (session.owner !== ownerOf(authInfo)) return refuse(403, 'This session belongs to another user');
            session.usedAt = Date.now();
            return session.transport.handleRequest(request, { authInfo });
        }
        const body = request.method === 'POST' ? await request.clone().json().catch(() => undefined) : undefined;
        if (isInitializeRequest(body)) {
            const transport = new WebStandardStreamableHTTPServerTransport({
                sessionIdGenerator: () => randomUUID(),
                onsessioninitialized: newId => {
                    sessions.set(newId, { transport, owner: ownerOf(authInfo), usedAt: Date.now() });
                }
            });
            transport.onclose = () => {
                if (transport.sessionId) sessions.delete(transport.sessionId);
            };
            await buildServer().connect(transport);
            return transport.handleRequest(request, { authInfo, parsedBody: body });
        }
        return stateless.fetch(request, { authInfo });
    };
}
// endregion sessions
