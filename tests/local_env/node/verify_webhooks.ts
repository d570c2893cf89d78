// Verifies captured webhook deliveries with the unmodified @scalekit-sdk/node.
// stdin: {"items": [{"secret", "headers", "body"}]}; stdout: one JSON array of
// {"ok": true} or {"ok": false, "name": <error class>, "message": ...}, in order.
import { readFileSync } from 'node:fs';
import { ScalekitClient } from '@scalekit-sdk/node';

const input = JSON.parse(readFileSync(0, 'utf8'));
// verifyWebhookPayload makes no network call; the URL and credentials are never used.
const client = new ScalekitClient('https://127.0.0.1:9', 'skc_1', 'unused');
const out = input.items.map((item: { secret: string; headers: Record<string, string>; body: string }) => {
  try {
    return { ok: client.verifyWebhookPayload(item.secret, item.headers, item.body) === true };
  } catch (err: any) {
    return { ok: false, name: err?.constructor?.name ?? 'Error', message: String(err?.message ?? err) };
  }
});
console.log(JSON.stringify(out));
