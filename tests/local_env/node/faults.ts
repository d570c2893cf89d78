// Runs a plan of management calls with the unmodified @scalekit-sdk/node against a local
// environment, injecting one fault (POST /_local/faults) before each step.
// stdin: {"steps": [{"fault": {...} | null, "call": "list" | "get", "orgId"?: string}]}
// stdout: one JSON array: per step {ok, value | name, errorCode, grpcStatus, httpStatus, ms, hits}.
import { readFileSync } from 'node:fs';
import { ScalekitClient } from '@scalekit-sdk/node';

const url = process.env.SCALEKIT_ENVIRONMENT_URL!;
const client = new ScalekitClient(url, process.env.SCALEKIT_CLIENT_ID!, process.env.SCALEKIT_CLIENT_SECRET!);
const plan = JSON.parse(readFileSync(0, 'utf8'));

async function admin(method: string, path: string, body?: unknown) {
  const resp = await fetch(url + path, {
    method, headers: { 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined,
  });
  if (resp.status >= 300) throw new Error(`${method} ${path} -> ${resp.status} ${await resp.text()}`);
  return resp.json();
}

const out: unknown[] = [];
for (const step of plan.steps) {
  await admin('DELETE', '/_local/faults');
  const fault = step.fault ? await admin('POST', '/_local/faults', step.fault) : null;
  const started = Date.now();
  let result: Record<string, unknown>;
  try {
    const value = step.call === 'list'
      ? (await client.organization.listOrganization({ pageSize: 5 })).organizations.length
      : (await client.organization.getOrganization(step.orgId)).organization?.id;
    result = { ok: true, value };
  } catch (err: any) {
    result = { ok: false, name: err?.constructor?.name, errorCode: err?.errorCode, grpcStatus: err?.grpcStatus,
               httpStatus: err?.httpStatus };
  }
  result.ms = Date.now() - started;
  if (fault) {
    const listed = (await admin('GET', '/_local/faults')).faults.find((f: any) => f.id === fault.id);
    result.hits = listed.hits;
  }
  out.push(result);
}
await admin('DELETE', '/_local/faults');
console.log(JSON.stringify(out));
