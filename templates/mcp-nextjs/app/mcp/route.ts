// region route
import { serveMcp } from '@/lib/mcp';
import { authenticate } from '@/lib/scalekit';

export const dynamic = 'force-dynamic';

async function handle(request: Request): Promise<Response> {
    const auth = await authenticate(request);
    if (auth instanceof Response) return auth; // 401, 403 or 503 with the challenge clients act on
    return serveMcp(request, auth); // every request needs the token, with or without a session
}

export { handle as DELETE, handle as GET, handle as POST };
// endregion route
