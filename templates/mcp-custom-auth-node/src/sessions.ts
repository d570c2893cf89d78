// The MCP endpoint. 2025-era clients open a session (initialize, then Mcp-Session-Id on every request):
// each session is bound to the user and client whose token opened it. Requests without a session (the
// 2026-07-28 protocol, or clients that keep none) are served statelessly, each by a fresh server.
import { randomUUID } from 'node:crypto';

import { NodeStreamableHTTPServerTransport, toNodeHandler } from '@modelcontextprotocol/node';
import type { AuthInfo, McpServer } from '@modelcontextprotocol/server';
import { createMcpHandler, isInitializeRequest } from '@modelcontextprotocol/server';
import type { Request, Response } from 'express';

// region sessions
const IDLE_MS = 30 * 60_000; // a session unused this long is closed
const sessions = new Map<string, { transport: NodeStreamableHTTPServerTransport; owner: string; usedAt: number }>();
const ownerOf = (auth?: AuthInfo) => `${auth?.extra?.sub} ${auth?.clientId}`;

function refuse(res: Response, status: number, message: string): void {
    res.status(status).json({ jsonrpc: '2.0', error: { code: -32001, message }, id: null });
}

export function mcpEndpoint(buildServer: () => McpServer) {
    const stateless = toNodeHandler(createMcpHandler(() => buildServer()));
    setInterval(() => {
        for (const session of sessions.values()) {
            if (Date.now() - session.usedAt > IDLE_MS) void session.transport.close();
        }
    }, 60_000).unref();

    return async (req: Request & { auth?: AuthInfo }, res: Response): Promise<void> => {
        const id = req.header('mcp-session-id');
        if (id) {
            const session = sessions.get(id);
            if (!session) return refuse(res, 404, 'Session not found');
            if (session.owner !== ownerOf(req.auth)) return refuse(res, 403, 'This session belongs to another user');
            session.usedAt = Date.now();
            return session.transport.handleRequest(req, res, req.body);
        }
        if (req.method === 'POST' && isInitializeRequest(req.body)) {
            const transport = new NodeStreamableHTTPServerTransport({
                sessionIdGenerator: () => randomUUID(),
                onsessioninitialized: newId => {
                    sessions.set(newId, { transport, owner: ownerOf(req.auth), usedAt: Date.now() });
                }
            });
            transport.onclose = () => {
                if (transport.sessionId) sessions.delete(transport.sessionId);
            };
            await buildServer().connect(transport);
            return transport.handleRequest(req, res, req.body);
        }
        return stateless(req, res, req.body);
    };
}
// endregion sessions
