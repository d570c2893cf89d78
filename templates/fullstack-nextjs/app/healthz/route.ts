// A liveness probe: public, no session needed (proxy.ts skips it).
export const dynamic = "force-dynamic";

export function GET() {
  return new Response("ok");
}
