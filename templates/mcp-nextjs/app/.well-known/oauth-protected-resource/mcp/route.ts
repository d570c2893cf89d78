// RFC 9728: the metadata at the path-suffixed URL of the /mcp endpoint.
import { metadataResponse } from '@/lib/scalekit';

export const dynamic = 'force-dynamic';
export const GET = metadataResponse;
