#!/usr/bin/env python3
"""Size of the skill's entry point and speed of the site build and the inner test loop.

    .venv/bin/python benchmarks/skill_and_site.py [--runs 3] [--skip-tests] [--json]

Figures (targets from the issue):
  SKILL.md lines            line count                                   <= 300
  SKILL.md tokens           characters / 4                               <= 3,000
  mkdocs build --strict     wall time, best of --runs                    <= 15 s
  inner-loop tests          `pytest -m "not browser and not slow"`       <= 90 s
The ratio column is target/measured (all four are "lower is better"), so >= 1.00 means the
target is met. The test tier runs once; its pass/fail count is printed next to the time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def timed(cmd: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - start, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="site builds to time (the best counts)")
    parser.add_argument("--skip-tests", action="store_true", help="leave out the inner-loop test tier")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    text = (REPO / "SKILL.md").read_text()
    rows = [
        ("SKILL.md lines", len(text.splitlines()), 300, ""),
        ("SKILL.md tokens (chars/4)", len(text) // 4, 3000, ""),
    ]

    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    builds = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.runs):
            seconds, done = timed([PY, "-m", "mkdocs", "build", "--strict", "-q", "-d", out], env=env)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                return 1
            builds.append(seconds)
    rows.append(
        ("mkdocs build --strict (s)", round(min(builds), 2), 15, f"runs {', '.join(f'{b:.2f}' for b in builds)}")
    )

    if not args.skip_tests:
        seconds, done = timed([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not browser and not slow"])
        summary = (done.stdout.strip().splitlines() or [""])[-1]
        summary = re.sub(r"=+", "", summary).strip()
        rows.append(('pytest -m "not browser and not slow" (s)', round(seconds, 1), 90, summary))

    if args.json:
        print(
            json.dumps(
                [
                    {"figure": f, "measured": m, "target": t, "ratio": round(t / m, 2) if m else None, "note": n}
                    for f, m, t, n in rows
                ]
            )
        )
        return 0
    print(f"{'figure':<42} {'measured':>9} {'target':>7} {'ratio':>6}  note")
    for figure, measured, target, note in rows:
        ratio = target / measured if measured else float("inf")
        print(f"{figure:<42} {measured:>9} {target:>7} {ratio:>6.2f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
