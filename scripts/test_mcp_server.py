#!/usr/bin/env python3
"""Check from outside that an MCP server is protected the way the MCP spec and Scalekit need.

Give it the MCP endpoint of the running server (e.g. http://localhost:8000/mcp). It checks the 401
challenge, the protected-resource metadata at the header's URL and the well-known URLs, the
authorization server it names (issuer, PKCE), and, against the local Scalekit environment, the
token matrix: a valid token in both issuer forms accepted, every single-fault token refused with
401, a scope shortfall answered 403 insufficient_scope, a token in the query string refused, a
session id without a token or with another user's token refused. Last, a real MCP client (the MCP
Python SDK) registers, logs in with PKCE and `resource`, and calls a tool. Tokens are never printed.
Without --tool it calls a tool from tools/list that needs no arguments.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap  # noqa: E402  (standard library only: switches to the skill's venv, creating it on first use)

_bootstrap.use_skill_venv()

import argparse
import json
from urllib.parse import urlsplit

from scalekit_checks import cli
from scalekit_checks.mcp_server import DEFAULT_LOGIN, McpServerChecks, Options
from scalekit_checks.report import CheckFailed, Exit, Report
from scalekit_checks.settings import ENV_URL, RESOURCE_ID

EXAMPLES = """\
  python scripts/test_mcp_server.py http://localhost:8000/mcp --env-file path/to/your-app/.env
  python scripts/test_mcp_server.py http://localhost:8000/mcp --env-file path/to/your-app/.env --tool whoami \\
      --write-tool add_todo --write-scope todo:write --write-args '{"title": "buy milk"}'
  python scripts/test_mcp_server.py https://mcp.example.com/mcp --open      # hosted: log in in your browser

Against the local Scalekit environment (`python scripts/local_scalekit.py --mcp-resource URL
--env-file path/to/your-app/.env`), pass the same --env-file (or export the variables it prints), so
this script trusts its certificate. The login uses the seeded user alice@acme.test (or --login
EMAIL:PASSWORD, e.g. a custom-auth app's own user); with --auto-login on the environment there is no
login page at all. Against a hosted environment the token matrix is not available: those checks are
skipped and say so.
"""
NETWORK_TIMEOUT = 10.0


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"title\": \"x\"}'")
    return value


def login_pair(text: str) -> tuple[str, str]:
    email, sep, password = text.partition(":")
    if not sep or not email or not password:
        raise argparse.ArgumentTypeError("use EMAIL:PASSWORD")
    return email, password


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="test_mcp_server.py", description=__doc__.strip().splitlines()[0],
        epilog=f"examples:\n{EXAMPLES}\n{cli.EXIT_CODES_HELP}", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the MCP endpoint, exactly as clients use it and as registered in Scalekit "
                                    "(e.g. http://localhost:8000/mcp)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout instead of check lines")
    cli.add_env_file_argument(parser)
    parser.add_argument("--timeout", type=cli.positive_seconds, default=None, metavar="SECONDS",
                        help=f"limit for each network step (default: {NETWORK_TIMEOUT:g}); with --open also the "
                             "wait for your login (default 300)")
    parser.add_argument("--tool", metavar="NAME", help="a tool any valid token may call (default: one from tools/list "
                                                        "that needs no arguments, read-only ones first)")
    parser.add_argument("--tool-args", type=json_object, default={}, metavar="JSON", help="its arguments (default: {})")
    parser.add_argument("--write-tool", metavar="NAME", help="a tool that needs more scope than the 401 challenge "
                                                             "names: checks the 403 insufficient_scope step-up")
    parser.add_argument("--write-scope", metavar="SCOPE", help="the scope --write-tool needs (e.g. todo:write)")
    parser.add_argument("--write-args", type=json_object, default={}, metavar="JSON",
                        help="arguments for --write-tool (default: {})")
    parser.add_argument("--login", type=login_pair, default=DEFAULT_LOGIN, metavar="EMAIL:PASSWORD",
                        help="who logs in on the login page the client meets (default: the local environment's "
                             f"{DEFAULT_LOGIN[0]}); shown never, used only on that page")
    parser.add_argument("--open", action="store_true",
                        help="hosted environment: open the login URL in a browser and wait for the callback")
    return parser


def body(args, report: Report) -> None:
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        raise CheckFailed(Exit.CONFIG, f"{args.url!r} is not an http(s) URL of an MCP endpoint "
                          "(e.g. http://localhost:8000/mcp)")
    if bool(args.write_tool) != bool(args.write_scope):
        raise CheckFailed(Exit.CONFIG, "--write-tool and --write-scope go together")
    report.info["server_url"] = args.url
    report.add_secret(args.login[1])
    settings = cli.read_env_file(args, report)
    options = Options(url=args.url, tool=args.tool, tool_args=args.tool_args, write_tool=args.write_tool,
                      write_scope=args.write_scope, write_args=args.write_args, login=args.login,
                      open_browser=args.open, timeout=args.timeout or NETWORK_TIMEOUT,
                      login_wait=args.timeout or 300.0 if args.open else args.timeout or NETWORK_TIMEOUT)
    McpServerChecks(report, options, expected={name: settings.get(name) for name in (ENV_URL, RESOURCE_ID)
                                                if settings.sources.get(name) == settings.env_file}).run()


def main() -> int:
    return cli.run("test_mcp_server", build_parser(), body)


if __name__ == "__main__":
    sys.exit(main())
