#!/usr/bin/env python3
"""Run a whole login against Scalekit without a prompt, and check every token it yields.

It listens on a loopback redirect URI, builds the authorization URL with the SDK (plus PKCE S256,
which scalekit-sdk-python 2.21 cannot add itself), logs in (headlessly with --local; otherwise
it prints the URL, or opens it with --open, and waits for the callback), exchanges the code with
authenticate_with_code, validates the ID and access tokens with validate_token (signature, iss,
aud, exp), prints their claims (never the tokens), refreshes, and builds the logout URL (with
--local it also follows it).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap  # noqa: E402  (standard library only: switches to the skill's venv, creating it on first use)

_bootstrap.use_skill_venv()

from scalekit_checks import cli
from scalekit_checks.auth_flow import DEFAULT_REDIRECT_URI, LOGIN_TIMEOUT, LOGOUT_PATH, NETWORK_TIMEOUT, Flow
from scalekit_checks.report import CheckFailed, Exit, Report

EXAMPLES = """\
  python scripts/test_auth_flow.py --local
  python scripts/test_auth_flow.py --local --path sso
  python scripts/test_auth_flow.py --local --json
  python scripts/test_auth_flow.py --open                 # real environment: log in in your browser
  python scripts/test_auth_flow.py --path sso --organization-id org_123 --open
  python scripts/test_auth_flow.py --local --path mcp
  python scripts/test_auth_flow.py --path mcp --resource-id res_123 --mcp-url https://mcp.example.com/mcp --open

Against a real environment, register the redirect URI http://localhost:8765/callback and the
post-logout URL http://localhost:8765/logged-out in the Scalekit dashboard (or pass your own
loopback URLs with --redirect-uri and --post-logout-redirect-uri).
"""
DEFAULT_SCOPES = "openid profile email offline_access"  # offline_access: without it, no refresh token


def build_parser():
    parser = cli.make_parser(
        "test_auth_flow.py", __doc__.strip().splitlines()[0], EXAMPLES, network=True,
        timeout_help=f"limit for each network step (default: {NETWORK_TIMEOUT:g}) and for the wait for the "
                     f"browser callback (default without --local: {LOGIN_TIMEOUT:g})")
    parser.add_argument("--path", choices=("full-stack", "sso", "mcp"), default="full-stack",
                        help="which login to run (default: full-stack)")
    parser.add_argument("--organization-id", metavar="ID", help="sso: log in through this organization's SSO")
    parser.add_argument("--connection-id", metavar="ID", help="sso: log in through this SSO connection")
    parser.add_argument("--domain", metavar="DOMAIN", help="sso: log in through the SSO connection of this domain")
    parser.add_argument("--resource-id", metavar="ID",
                        help="mcp: the MCP server's resource id (res_...); with --local, default: the seed's only resource")
    parser.add_argument("--mcp-url", metavar="URL",
                        help="mcp: the MCP server URL sent as the RFC 8707 resource (default with --local: the "
                             "resource's first URL in the seed)")
    parser.add_argument("--redirect-uri", metavar="URL",
                        help=f"loopback callback this script listens on (default: {DEFAULT_REDIRECT_URI}; "
                             "with --local a free port is used and registered)")
    parser.add_argument("--post-logout-redirect-uri", metavar="URL",
                        help=f"where logout returns (default: the redirect URI's origin + {LOGOUT_PATH})")
    parser.add_argument("--scopes", default=DEFAULT_SCOPES, help=f"scopes to request (default: {DEFAULT_SCOPES!r})")
    parser.add_argument("--open", action="store_true", help="open the authorization URL in a browser")
    parser.add_argument("--login-as", metavar="EMAIL", help="--local only: the seeded user the headless login signs in")
    parser.add_argument("--seed", metavar="FILE", help="--local only: seed file for the local environment")
    return parser


def check_arguments(args) -> None:
    """Flag combinations that cannot work; exit 2 before anything starts."""
    with_sso = [f for f in ("organization_id", "connection_id", "domain") if getattr(args, f)]
    problems = []
    if args.path != "sso" and with_sso:
        problems.append(f"--{with_sso[0].replace('_', '-')} needs --path sso")
    if args.path == "sso" and not with_sso and not args.local:
        problems.append("--path sso needs --organization-id, --connection-id or --domain")
    if args.path == "mcp" and not args.resource_id and not args.local:
        problems.append("--path mcp needs --resource-id (with --local it defaults to the seed's only resource)")
    if args.resource_id and args.path != "mcp":
        problems.append("--resource-id needs --path mcp")
    if args.mcp_url and args.path != "mcp":
        problems.append("--mcp-url needs --path mcp")
    if args.path == "mcp" and not args.local and not args.mcp_url:
        problems.append("--path mcp needs --mcp-url (the MCP server URL registered for the resource)")
    if not args.local and (args.login_as or args.seed):
        problems.append("--login-as and --seed only apply with --local")
    if "openid" not in args.scopes.split():
        problems.append("--scopes must include openid")
    if problems:
        raise CheckFailed(Exit.CONFIG, "; ".join(problems))


def body(args, report: Report) -> None:
    report.info["path"] = args.path
    with report.check("arguments") as c:
        check_arguments(args)
        c.ok(f"--path {args.path}")
    run = Flow(args, report)
    try:
        run.run()
    finally:
        run.close()


def main() -> int:
    return cli.run("test_auth_flow", build_parser(), body)


if __name__ == "__main__":
    sys.exit(main())
