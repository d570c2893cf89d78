#!/usr/bin/env python3
"""Benchmark of the full-stack templates: what a protected route costs next to a public one.

    .venv/bin/python benchmarks/fullstack_templates_bench.py [--requests 400] [--json] [NAME ...]

For each template (all templates/fullstack-* by default), in one run: build it, start it against its
own local Scalekit environment, log in through the login pages, then alternate requests on one
keep-alive connection to the protected API route (with the session cookie) and to the public route
(`routes.public`, default `ready`; with the same cookie, as a browser sends it), and compare
medians. Then a run of bearer-token requests, and the environment's count of GET /keys.

Figures and targets:
  protected / public p50     the session check costs little next to routing          <= 1.3
  bearer p50 (informational) the same route with `Authorization: Bearer`, signature checked
  /keys fetches              per app process, counted at /_local/stats               == 1
The ratio column is target/measured for "lower is better" figures, so >= 1.00 means the target is met.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests")]

from conftest import LocalScalekitProcess  # noqa: E402  (tests/conftest.py: the local environment as a process)
from scalekit_checks import webapp  # noqa: E402
from template_suites import launcher  # noqa: E402

RATIO_TARGET = 1.3


def timed_gets(port: int, requests: dict[str, tuple[str, dict]], rounds: int) -> dict[str, list[float]]:
    """{label: (path, headers)}: GET each in turn on one keep-alive connection, `rounds` times after 20
    warm-up rounds; milliseconds per label."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times: dict[str, list[float]] = {label: [] for label in requests}
    for round_number in range(rounds + 20):
        for label, (path, headers) in requests.items():
            start = time.perf_counter()
            connection.request("GET", path, headers={**headers, "Host": f"localhost:{port}"})
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - start) * 1000
            if response.status != 200:
                raise SystemExit(f"GET {path} answered HTTP {response.status}")
            if round_number >= 20:
                times[label].append(elapsed)
    connection.close()
    return times


def bench(name: str, rounds: int, work: Path) -> dict:
    template = launcher.load(launcher.TEMPLATES_DIR / name)
    launcher.build(template, work)
    port = launcher.free_port()
    local = LocalScalekitProcess(work / "data", work / f"{name}-env.log",
                                 extra_args=launcher.registrations(template, port))
    server = launcher.start(template, local, port, work)
    try:
        routes = template.manifest["routes"]
        target = webapp.Target(server.url, routes, local.url, local.client_id, local.client_secret,
                               verify=local.ca_bundle)
        login = webapp.app_login(target)
        cookie = "; ".join(f"{k}={v}" for k, v in login.session_cookies.items())
        public = routes.get("public") or template.manifest.get("ready", "/")
        times = timed_gets(port, {"protected": (routes["api"], {"Cookie": cookie}),
                                  "public": (public, {"Cookie": cookie})}, rounds)
        bearer = webapp.own_tokens(target)["access_token"]
        times.update(timed_gets(port, {"bearer": (routes["api"], {"Authorization": f"Bearer {bearer}"})}, rounds // 2))
        protected_p50, public_p50 = statistics.median(times["protected"]), statistics.median(times["public"])
        return {"template": name, "public_path": public, "public_p50_ms": round(public_p50, 3),
                "protected_p50_ms": round(protected_p50, 3), "ratio": round(protected_p50 / public_p50, 3),
                "bearer_p50_ms": round(statistics.median(times["bearer"]), 3),
                "keys_fetches": int(local.stats().get("keys", 0)), "requests": rounds * 2 + rounds // 2}
    finally:
        server.stop()
        local.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="templates (default: every full-stack template)")
    parser.add_argument("--requests", type=int, default=400, help="timed requests per route (default 400)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    names = args.names or launcher.names("full-stack")
    with tempfile.TemporaryDirectory(prefix="fullstack-bench-") as folder:
        rows = [bench(name, args.requests, Path(folder)) for name in names]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'template':<22} {'public p50':>11} {'protected p50':>14} {'protected/public':>17} {'target':>7} "
          f"{'ratio':>6} {'bearer p50':>11} {'/keys':>6} {'target':>7}")
    for row in rows:
        meets = RATIO_TARGET / row["ratio"]
        print(f"{row['template']:<22} {row['public_p50_ms']:>9.2f}ms {row['protected_p50_ms']:>12.2f}ms "
              f"{row['ratio']:>17.2f} {'<=' + str(RATIO_TARGET):>7} {meets:>6.2f} {row['bearer_p50_ms']:>9.2f}ms "
              f"{row['keys_fetches']:>6} {'==1':>7}")
    print("(ratio >= 1.00: target met. Public route: each template's routes.public with the same cookie; "
          "p50 over alternating requests on one keep-alive connection.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
