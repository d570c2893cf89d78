// region route
import { mcpHandler } from '@/lib/mcp';
import { authenticate, benchmarkWithoutAuth } from '@/lib/scalekit';

export const dynamic = 'force-dynamic';

async function handle(request: Request): Promise<Response> {
    if (benchmarkWithoutAuth()) return mcpHandler.fetch(request);
    const auth = await authenticate(request);
    if (auth instanceof Response) return auth; // 401, 403 or 503 with the challenge clients act on
    return mcpHandler.fetch(request, { authInfo: auth });
}

export { handle as DELETE, handle as GET, handle as POST };
// endregion route
