// The same metadata at the root, where Scalekit's docs look (this host serves one MCP resource).
import { metadataResponse } from '@/lib/scalekit';

export const dynamic = 'force-dynamic';
export const GET = metadataResponse;
