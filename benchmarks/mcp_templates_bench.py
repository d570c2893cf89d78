#!/usr/bin/env python3
"""Benchmark of the MCP templates: what auth costs per tool call; prints figures next to targets.

    .venv/bin/python benchmarks/mcp_templates_bench.py [--calls 600] [--template NAME ...] [--json]

For each MCP template (templates/mcp-*, built from its template.json), in one run: the same app
twice against one local Scalekit environment, once as shipped and once without auth. The templates
have no switch that turns auth off (users copy them); the benchmark builds a copy of the template in
a temporary folder with the one place that puts the token check in front of the MCP endpoint
rewritten (STRIP below: exact text, each found exactly once, so a changed template stops the
benchmark instead of measuring something else). Calls to `tools/call` of the template's tool
alternate between the two over one keep-alive connection each, after a warm-up; the figures are the
medians (p50) and the 90th percentiles.

Targets (issue #10):
  p50 with auth / p50 without auth      <= 1.2
  /keys fetches by the protected server  == 1 per process (counted by the local environment)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import LocalScalekitProcess  # noqa: E402  (tests/conftest.py: one local environment process)
from template_suites import launcher  # noqa: E402  (builds and starts templates from template.json)

RATIO_TARGET = 1.2
KEYS_TARGET = 1
WARMUP = 30
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
# Per template: (file, the text that puts the token check in front of the MCP endpoint, the same without it).
STRIP = {
    "mcp-fastapi": [("app.py", 'app.mount("/", ScalekitAuth(mcp_app))', 'app.mount("/", mcp_app)')],
    "mcp-custom-auth-python": [("app.py", 'app.mount("/", ScalekitAuth(mcp_app))', 'app.mount("/", mcp_app)')],
    "mcp-fastmcp": [("server.py", 'FastMCP("Todo MCP server", auth=auth,', 'FastMCP("Todo MCP server", auth=None,')],
    "mcp-express": [("src/server.ts", "app.all('/mcp', requireAccessToken, ", "app.all('/mcp', ")],
    "mcp-custom-auth-node": [("src/server.ts", "app.all('/mcp', requireAccessToken, ", "app.all('/mcp', ")],
    "mcp-nextjs": [("app/mcp/route.ts", "import { authenticate } from '@/lib/scalekit';\n", ""),
                   ("app/mcp/route.ts", "    const auth = await authenticate(request);\n"
                                        "    if (auth instanceof Response) return auth; // 401, 403 or 503 with the challenge clients act on\n"
                                        "    return serveMcp(request, auth);", "    return serveMcp(request);")],
    "mcp-go": [("main.go", 'mux.Handle("/mcp", protect(cfg, newVerifier(cfg), mcpHandler))', 'mux.Handle("/mcp", mcpHandler)')],
}
DEPENDENCIES = (".venv", "node_modules")  # installed once for the template; the copy gets them as they are


class Session:
    """One MCP session over one keep-alive connection."""

    def __init__(self, url: str, token: str | None):
        self.url = url
        self.client = httpx.Client(timeout=30, headers={**HEADERS, **({"Authorization": f"Bearer {token}"}
                                                                      if token else {})})
        opened = self.client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        if opened.status_code != 200:
            raise SystemExit(f"initialize on {url} answered HTTP {opened.status_code}: {opened.text[:300]}")
        self.session = opened.headers.get("mcp-session-id")
        if self.session:
            self.client.headers.update({"Mcp-Session-Id": self.session, "MCP-Protocol-Version": "2025-11-25"})
        self.client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.next_id = 2

    def call(self, tool: str, args: dict) -> float:
        self.next_id += 1
        start = time.perf_counter()
        response = self.client.post(self.url, json={"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
                                                    "params": {"name": tool, "arguments": args}})
        elapsed = time.perf_counter() - start
        if response.status_code != 200 or '"isError":true' in response.text.replace(" ", ""):
            raise SystemExit(f"tools/call {tool} on {self.url} failed: HTTP {response.status_code} {response.text[:300]}")
        return elapsed


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def copy_without_auth(template: launcher.Template, workdir: Path) -> launcher.Template:
    """A copy of the built template in `workdir` whose MCP endpoint has no token check, built."""
    dest = workdir / f"{template.name}-without-auth"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z", "."], cwd=template.dir,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(template.dir / rel, dest / rel)
    for file, old, new in STRIP[template.name]:
        path = dest / file
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{template.name}/{file} no longer holds {old!r} exactly once: update STRIP in "
                             f"{Path(__file__).name} to the template's auth wiring")
        path.write_text(text.replace(old, new))
    for name in DEPENDENCIES:
        if (template.dir / name).is_dir():  # Python venvs work through a link; Node bundlers want the files
            if name == ".venv":
                (dest / name).symlink_to(template.dir / name)
            else:
                shutil.copytree(template.dir / name, dest / name, symlinks=True)
    env = {**os.environ, "PATH": launcher._tool_path(), "CI": "1", "NEXT_TELEMETRY_DISABLED": "1"}
    for command in template.manifest["install"]:
        if command.startswith(("uv ", "npm ci")):
            continue  # the dependencies are there already
        done = subprocess.run(["bash", "-c", command], cwd=dest, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise SystemExit(f"building {dest.name}: {command!r} exited {done.returncode}\n{done.stdout[-2000:]}"
                             f"{done.stderr[-2000:]}")
    return launcher.Template(dest.name, dest, template.manifest)


def bench(template: launcher.Template, calls: int, workdir: Path) -> dict:
    mcp = template.manifest["mcp"]
    if template.name not in STRIP:
        return {"template": template.name, "skipped": f"no STRIP entry in {Path(__file__).name}"}
    launcher.build(template, workdir)
    stripped = copy_without_auth(template, workdir)
    protected_port, open_port = launcher.free_port(), launcher.free_port()
    urls = [launcher.app_url(p) + mcp["endpoint"] for p in (protected_port, open_port)]
    local = LocalScalekitProcess(workdir / "data", workdir / f"{template.name}-env.log",
                                 extra_args=(*launcher.registrations(template, protected_port), "--mcp-resource", urls[1]))
    servers = []
    try:
        resource = local.mcp_resources[urls[0]]
        servers.append(launcher.start(template, local, protected_port, workdir,
                                      extra_env={"SCALEKIT_RESOURCE_ID": resource}))
        servers.append(launcher.start(stripped, local, open_port, workdir))
        matrix = httpx.post(f"{local.url}/_local/token-matrix", verify=local.ca_bundle, timeout=30, json={
            "kind": "mcp", "audience": [resource, urls[0]], "scopes": ["todo:read"]}).json()
        protected, unprotected = Session(urls[0], matrix["valid"]["token"]), Session(urls[1], None)
        tool, args = mcp["tool"], {}
        for _ in range(WARMUP):
            protected.call(tool, args)
            unprotected.call(tool, args)
        with_auth, without_auth = [], []
        for i in range(calls):  # alternate, so drift on a shared machine hits both alike
            pair = (protected, with_auth), (unprotected, without_auth)
            for session, samples in (pair if i % 2 == 0 else pair[::-1]):
                samples.append(session.call(tool, args))
        keys = local.stats().get("keys", 0)
    finally:
        for server in servers:
            server.stop()
        local.stop()
    p50_auth, p50_open = statistics.median(with_auth), statistics.median(without_auth)
    return {"template": template.name, "calls": calls,
            "p50_with_auth_ms": round(p50_auth * 1000, 2), "p50_without_auth_ms": round(p50_open * 1000, 2),
            "p90_with_auth_ms": round(percentile(with_auth, 90) * 1000, 2),
            "p90_without_auth_ms": round(percentile(without_auth, 90) * 1000, 2),
            "ratio": round(p50_auth / p50_open, 3), "ratio_target": RATIO_TARGET,
            "ratio_met": p50_auth / p50_open <= RATIO_TARGET,
            "keys_fetches": keys, "keys_target": KEYS_TARGET, "keys_met": keys == KEYS_TARGET}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600, help="measured calls per server (default 600)")
    parser.add_argument("--template", action="append", help="only this template (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    templates = [t for t in launcher.discover("mcp") if not args.template or t.name in args.template]
    if not templates:
        raise SystemExit("no MCP template matches")
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        rows = []
        for template in templates:
            print(f"benchmarking {template.name} ...", file=sys.stderr, flush=True)
            rows.append(bench(template, args.calls, Path(tmp)))
    if args.json:
        print(json.dumps({"figures": rows}, indent=2))
        return 0
    print(f"{'template':<26} {'p50 auth':>9} {'p50 none':>9} {'p90 auth':>9} {'p90 none':>9} {'ratio':>6} "
          f"{'target':>7} {'/keys':>6} {'target':>7}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['template']:<26} skipped: {r['skipped']}")
            continue
        print(f"{r['template']:<26} {r['p50_with_auth_ms']:>7.2f}ms {r['p50_without_auth_ms']:>7.2f}ms "
              f"{r['p90_with_auth_ms']:>7.2f}ms {r['p90_without_auth_ms']:>7.2f}ms {r['ratio']:>6.2f} "
              f"{'<= ' + str(RATIO_TARGET):>7} {r['keys_fetches']:>6} {'== ' + str(KEYS_TARGET):>7}")
    print(f"\ntools/call over keep-alive, {args.calls} calls per server after {WARMUP} warm-up calls, alternating; "
          "ratio = p50 with auth / p50 without (<= target meets it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
