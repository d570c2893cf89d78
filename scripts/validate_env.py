#!/usr/bin/env python3
"""Check the Scalekit settings an app needs, without touching the network.

Reads .env (or --env-file) and the process environment, and prints one line per variable:
SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID, SCALEKIT_CLIENT_SECRET and, when set, APP_URL (the
app's origin; it shows the templates' callback APP_URL/auth/callback), SCALEKIT_REDIRECT_URI (on
APP_URL's origin) and SCALEKIT_POST_LOGOUT_REDIRECT_URI. With --path mcp, an MCP server's:
SCALEKIT_ENVIRONMENT_URL, SCALEKIT_RESOURCE_ID, APP_URL, and the client id and secret only when set
(custom auth, with SCALEKIT_CONNECTION_ID). The secret is never printed.
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
  python scripts/validate_env.py --env-file path/to/your-app/.env
  python scripts/validate_env.py --env-file path/to/your-app/.env --path mcp
  python scripts/validate_env.py --json          # exported variables, or .env in the current folder
"""


def body(args, report: Report) -> None:
    cli.load_settings(args, report, variables_for=args.path)


def main() -> int:
    parser = cli.make_parser("validate_env.py", __doc__.strip().splitlines()[0], EXAMPLES, network=False)
    parser.add_argument("--path", choices=("full-stack", "sso", "mcp"), default="full-stack",
                        help="what the variables are for: an app (full-stack, sso; the default) or an MCP server "
                             "(mcp: SCALEKIT_RESOURCE_ID and APP_URL, no client secret needed)")
    return cli.run("validate_env", parser, body)


if __name__ == "__main__":
    sys.exit(main())
