#!/usr/bin/env python3
"""Benchmark of the validation scripts; prints their figures next to the targets.

    .venv/bin/python benchmarks/scripts_bench.py [--runs 5] [--json]

Figures (targets from issue #5), wall time of the whole process, Python start-up included:
  test_connection.py --local           start the local environment, run every check     <= 3.0 s
  silent port, --timeout T             a port that accepts nothing and never answers    <= T + 1 s
  test_auth_flow.py --local            a whole login (informational)
  validate_env.py                      Python start-up plus the offline checks (informational)
The ratio column is target/measured, so >= 1.00 means the target is met. Medians over --runs;
the machine is shared and noisy, so the runs of each figure alternate with the others.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
TIMEOUTS = (1.0, 2.0)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALEKIT_")}
    env.update(extra)
    return env


def timed(script: str, *args: str, env: dict[str, str], expect: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(SCRIPTS / script), *args], env=env, cwd=REPO,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    if proc.returncode != expect:
        raise SystemExit(f"{script} {' '.join(args)} exited {proc.returncode}, expected {expect}:\n{proc.stderr}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # accepted by the kernel, never by us: connects succeed, nothing answers
    silent_env = clean_env(SCALEKIT_ENVIRONMENT_URL=f"https://127.0.0.1:{silent.getsockname()[1]}",
                           SCALEKIT_CLIENT_ID="skc_70000000000000001",
                           SCALEKIT_CLIENT_SECRET="test_bench_5xKq8vRz2NwT7bLm4PcY9hJd3FgS6a")
    offline_env = dict(silent_env)

    jobs = {
        "test_connection.py --local": (("test_connection.py", "--local"), clean_env(), 0, 3.0),
        **{f"silent port, --timeout {t:g}": (("test_connection.py", "--timeout", f"{t:g}"), silent_env, 4, t + 1.0)
           for t in TIMEOUTS},
        "test_auth_flow.py --local": (("test_auth_flow.py", "--local"), clean_env(), 0, None),
        "validate_env.py": (("validate_env.py",), offline_env, 0, None),
    }
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    try:
        for _ in range(args.runs):
            for name, (argv, env, expect, _target) in jobs.items():
                samples[name].append(timed(*argv, env=env, expect=expect))
    finally:
        silent.close()

    rows = []
    for name, (_argv, _env, _expect, target) in jobs.items():
        median = statistics.median(samples[name])
        rows.append({"figure": name, "median_s": round(median, 3), "min_s": round(min(samples[name]), 3),
                     "max_s": round(max(samples[name]), 3), "target_s": target,
                     "ratio": round(target / median, 2) if target else None,
                     "met": (median <= target) if target else None})
    if args.json:
        print(json.dumps({"runs": args.runs, "figures": rows}, indent=2))
        return 0
    print(f"{'figure':<34} {'median':>8} {'min':>8} {'max':>8} {'target':>8} {'ratio':>6}")
    for r in rows:
        target = f"{r['target_s']:.2f}s" if r["target_s"] else "-"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] else "-"
        print(f"{r['figure']:<34} {r['median_s']:>7.2f}s {r['min_s']:>7.2f}s {r['max_s']:>7.2f}s {target:>8} {ratio:>6}")
    base = next(r["median_s"] for r in rows if r["figure"] == "validate_env.py")
    local = next(r["median_s"] for r in rows if r["figure"] == "test_connection.py --local")
    print(f"\ntest_connection.py --local takes {local / base:.1f}x a bare validate_env.py run ({base:.2f}s of start-up).")
    print(f"runs per figure: {args.runs}; ratio = target / median (>= 1.00 meets the target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
