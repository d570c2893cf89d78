// region route
import { mcpHandler } from '@/lib/mcp';
import { authenticate } from '@/lib/scalekit';

export const dynamic = 'force-dynamic';

async function handle(request: Request): Promise<Response> {
    const auth = await authenticate(request);
    if (auth instanceof Response) return auth; // 400, 401 or 503 with the challenge clients act on
    return mcpHandler.fetch(request, { authInfo: auth });
}

export { handle as DELETE, handle as GET, handle as POST };
// endregion route
