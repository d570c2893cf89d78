#!/usr/bin/env python3
"""Check the Scalekit settings an app needs, without touching the network.

Reads .env (or --env-file) and the process environment, and prints one line per variable:
SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID, SCALEKIT_CLIENT_SECRET and, when set,
SCALEKIT_REDIRECT_URI and SCALEKIT_POST_LOGOUT_REDIRECT_URI. The secret is never printed.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap  # noqa: E402  (standard library only: switches to the skill's venv, creating it on first use)

_bootstrap.use_skill_venv()


from scalekit_checks import cli
from scalekit_checks.report import Report

EXAMPLES = """\
  python scripts/validate_env.py
  python scripts/validate_env.py --env-file app/.env
  python scripts/validate_env.py --json
"""


def body(args, report: Report) -> None:
    cli.load_settings(args, report)


def main() -> int:
    parser = cli.make_parser("validate_env.py", __doc__.strip().splitlines()[0], EXAMPLES, network=False)
    return cli.run("validate_env", parser, body)


if __name__ == "__main__":
    sys.exit(main())
