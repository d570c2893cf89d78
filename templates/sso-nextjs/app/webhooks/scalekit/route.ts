import { handle, verify, WebhookRejected } from "@/lib/directory-sync";

// region webhook_route
export async function POST(request: Request) {
  const rawBody = await request.text();
  let event;
  try {
    event = verify(Object.fromEntries(request.headers), rawBody);
  } catch (err) {
    if (err instanceof WebhookRejected) return Response.json({ error: "invalid signature" }, { status: 401 });
    throw err;
  }
  return Response.json({ status: await handle(request.headers.get("webhook-id") ?? "", event) });
}
// endregion webhook_route
