#!/usr/bin/env python3
"""Benchmark of the MCP templates: what auth costs per tool call; prints figures next to targets.

    .venv/bin/python benchmarks/mcp_templates_bench.py [--calls 600] [--template NAME ...] [--json]

For each MCP template (templates/mcp-*, built from its template.json), in one run: the same app
twice against one local Scalekit environment, once as shipped and once with its benchmark-only
switch (`mcp.benchmark_env`, e.g. MCP_BENCHMARK_WITHOUT_AUTH=1) that serves it without auth. Calls to
`tools/call` of the template's tool alternate between the two over one keep-alive connection each,
after a warm-up; the figures are the medians (p50) and the 90th percentiles.

Targets (issue #10):
  p50 with auth / p50 without auth      <= 1.2
  /keys fetches by the protected server  == 1 per process (counted by the local environment)
"""
from __future__ import annotations

import argparse
import json
import statistics
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


def bench(template: launcher.Template, calls: int, workdir: Path) -> dict:
    mcp = template.manifest["mcp"]
    switch = mcp.get("benchmark_env")
    if not switch:
        return {"template": template.name, "skipped": "no mcp.benchmark_env in template.json"}
    launcher.build(template, workdir)
    protected_port, open_port = launcher.free_port(), launcher.free_port()
    urls = [launcher.app_url(p) + mcp["endpoint"] for p in (protected_port, open_port)]
    local = LocalScalekitProcess(workdir / "data", workdir / f"{template.name}-env.log",
                                 extra_args=(*launcher.registrations(template, protected_port), "--mcp-resource", urls[1]))
    servers = []
    try:
        resource = local.mcp_resources[urls[0]]
        servers.append(launcher.start(template, local, protected_port, workdir,
                                      extra_env={"SCALEKIT_RESOURCE_ID": resource}))
        servers.append(launcher.start(template, local, open_port, workdir, extra_env={switch: "1"}))
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
