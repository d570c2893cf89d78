// A liveness probe: public, no session needed.
export const dynamic = "force-dynamic";

export function GET() {
  return new Response("ok");
}
