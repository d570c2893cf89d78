"""Command line of the local Scalekit environment (scripts/local_scalekit.py)."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shlex
import signal
import sys
from pathlib import Path

from .keys.datadir import DEFAULT_DATA_DIR

# The validation scripts' exit codes where they apply: 2 configuration, 5 unexpected.
EXIT_OK, EXIT_USAGE, EXIT_UNEXPECTED = 0, 2, 5

DESCRIPTION = """\
Start a local Scalekit environment on 127.0.0.1: the OAuth/OIDC endpoints (/oauth/authorize,
/oauth/token, /keys, /oidc/logout, /userinfo, discovery), login pages, and the gRPC management API
that the Scalekit SDKs call, all on one port. It speaks TLS with a local CA (HTTP/1.1 and HTTP/2
gRPC on the same port) or, with --plaintext, HTTP/1.1 and h2c.

Once listening it prints `export` lines for SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID,
SCALEKIT_CLIENT_SECRET and (over TLS) the CA trust variables, then serves until Ctrl-C or SIGTERM.
Being a server, it has no --timeout, and its --env-file writes a file instead of reading one."""

EXIT_CODES = """\
exit codes (the validation scripts' codes; 3 and 4 do not occur):
  0  stopped cleanly (Ctrl-C or SIGTERM)
  2  configuration: bad arguments, bad seed file, --auto-login names no seeded user, the port is
     in use, --env-file cannot be written
  5  unexpected: it failed to start for another reason (one line on stderr names it)"""


def seed_summary(seed: dict) -> str:
    """The seed as text tables, for --help and the startup banner."""
    lines = []
    env_clients = [c for c in seed["clients"] if c["type"] == "environment"]
    for c in env_clients:
        lines.append(f"  client        {c['id']}  (its secret is printed in the export lines at start)")
        for uri in c.get("redirect_uris", []):
            lines.append(f"    redirect    {uri}")
        for uri in c.get("post_logout_redirect_uris", []):
            lines.append(f"    post-logout {uri}")
    for c in seed["clients"]:
        if c["type"] == "m2m":
            lines.append(f"  m2m client    {c['id']}  org {c.get('organization_id', '-')}"
                         f"  scopes {' '.join(c.get('scopes', [])) or '-'}")
    orgs = {o["id"]: o for o in seed.get("organizations", [])}
    for o in orgs.values():
        lines.append(f"  organization  {o['id']}  {o['display_name']}" + (f"  (external id {o['external_id']})" if o.get("external_id") else ""))
    for c in seed.get("connections", []):
        lines.append(f"  connection    {c['id']}  {c['type']} ({c.get('provider', 'CUSTOM')})  org {c['organization_id']}"
                     f"  domains {', '.join(c.get('domains', [])) or '-'}")
    for u in seed.get("users", []):
        roles = "; ".join(f"{m['organization_id']}: {','.join(m.get('roles', [])) or '-'}" for m in u.get("memberships", []))
        password = u.get("password") or "(no password: SSO/social only)"
        lines.append(f"  user          {u['email']:<22} password {password:<16} {u['id']}  {roles}")
    for r in seed.get("resources", []):  # MCP servers (endpoints/mcp_as.py)
        lines.append(f"  mcp resource  {r['id']}  {', '.join(r['urls'])}  scopes {' '.join(r.get('scopes', [])) or '-'}"
                     + (f"  custom login {r['custom_auth']['login_url']}" if r.get("custom_auth") else ""))
    providers = [p["provider"] for p in seed.get("environment", {}).get("providers", []) if p.get("enabled", True)]
    lines.append(f"  social login  {', '.join(providers) or '(none)'}")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """Loads the default seed for the epilog only when help is printed (keeps startup quick)."""

    def format_help(self) -> str:
        from .state.seed import load_seed

        try:
            seed = "default seed (used without --seed):\n" + seed_summary(load_seed(None))
        except Exception as exc:  # the help must still print
            seed = f"default seed: unavailable ({exc})"
        self.epilog = seed + "\n\n" + EXIT_CODES + "\n\nDocs: reference/local-environment.md"
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="local_scalekit.py", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8443, help="port to listen on (default 8443; 0 picks a free port)")
    parser.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "localhost"],
                        help="loopback name used in the environment URL and bound (default 127.0.0.1)")
    parser.add_argument("--plaintext", action="store_true",
                        help="serve http:// (HTTP/1.1 + h2c) instead of TLS; for Node and browsers, not the Python SDK")
    parser.add_argument("--seed", metavar="FILE", help="YAML seed file (schema: scripts/scalekit_local/seed.schema.json)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder for the CA, TLS certificate and signing key, kept across runs so the CA an "
                             f"app trusts stays the same (default: .local-scalekit in the skill folder, {DEFAULT_DATA_DIR})")
    parser.add_argument("--persist", action="store_true",
                        help="keep the state (organizations, users, sessions...) in DATA_DIR/state.sqlite3 across "
                             "restarts; without it every run starts from the seed")
    parser.add_argument("--auto-login", metavar="EMAIL",
                        help="headless login: /oauth/authorize logs this seeded user in without a page")
    parser.add_argument("--access-token-ttl", type=int, default=300, metavar="SECONDS",
                        help="access-token lifetime (default 300)")
    parser.add_argument("--redirect-uri", action="append", default=[], metavar="URL",
                        help="also allow this login callback URL for the app client (repeatable), as adding it "
                             "under Redirects in the dashboard does")
    parser.add_argument("--post-logout-redirect-uri", action="append", default=[], metavar="URL",
                        help="also allow this URL after logout (repeatable)")
    parser.add_argument("--mcp-resource", action="append", default=[], metavar="URL",
                        help="register an MCP server at this URL (repeatable), with scopes todo:read todo:write; "
                             "its resource id is printed as SCALEKIT_RESOURCE_ID (the first one's)")
    parser.add_argument("--mcp-token-issuer", choices=["environment", "resource"], default="environment",
                        help="iss of access tokens for --mcp-resource servers: the environment URL (default, as the "
                             "hosted service issues them today) or {environment URL}/resources/{resource id}")
    parser.add_argument("--mcp-login-url", metavar="URL",
                        help="custom auth: the --mcp-resource servers keep their own login page at this URL; "
                             "/oauth/authorize sends the browser there with login_request_id and state, and the "
                             "connection id the app posts the user to is printed as SCALEKIT_CONNECTION_ID")
    parser.add_argument("--webhook-url", action="append", default=[], metavar="URL",
                        help="register a webhook endpoint for all events at this URL (repeatable); the first one's "
                             "signing secret is printed as SCALEKIT_WEBHOOK_SECRET")
    parser.add_argument("--hostile-idp", action="append", default=[], metavar="CONNECTION_ID",
                        help="let this SSO connection's identity provider assert any email, not only its "
                             "organization's domains (repeatable; for testing an app's account-linking rules)")
    parser.add_argument("--modular-sso", action="store_true",
                        help="an environment for modular SSO (no full-stack auth): an SSO login's ID token sub is "
                             "'<connection id>;<identity provider's user id>', not a Scalekit user id")
    parser.add_argument("--token-claim", action="append", default=[], metavar="KEY=EXPRESSION",
                        help="add a custom claim to user access tokens (repeatable), as Dashboard > Token Claims "
                             "does, e.g. 'plan=organization.metadata.plan ?? \"free\"'")
    parser.add_argument("--env-file", metavar="PATH",
                        help="also write the variables into this dotenv file: only their own lines are replaced or "
                             "added, every other line is kept (a new file gets mode 600)")
    parser.add_argument("--json", action="store_true", help="print the variables as one JSON object instead of export lines")
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC",
                        help="inject a fault, repeatable: 'POST /oauth/token=500 x3', "
                             "'rpc:OrganizationService/ListOrganization=UNAVAILABLE x2', 'GET /keys=delay:3s' "
                             "(syntax: reference/local-environment-details.md, Fault injection)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log HTTP requests, gRPC calls and details to stderr")
    return parser


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def _dotenv_value(value: str) -> str:
    return json.dumps(value) if any(ch in value for ch in " #'\"$\\") else value


def write_env_file(path: str, variables: dict[str, str]) -> None:
    """Merge `variables` into the dotenv file at `path`: each of these keys gets its new value on the
    line where it was (later duplicates of it are dropped), new keys are appended, and every other
    line stays as it was. A new file is created with mode 600; an existing one keeps its mode."""
    target = Path(path).resolve()  # through a symlink, so the link stays a link
    try:
        old_lines = target.read_text(encoding="utf-8").splitlines()
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        old_lines, mode = [], 0o600
    lines, written = [], set()
    for line in old_lines:
        match = _ENV_LINE.match(line)
        key = match.group(1) if match else None
        if key not in variables:
            lines.append(line)
        elif key not in written:
            prefix = "export " if line.lstrip().startswith("export ") else ""
            lines.append(f"{prefix}{key}={_dotenv_value(variables[key])}")
            written.add(key)
    new = [k for k in variables if k not in written]
    if new:
        if lines and lines[-1].strip():
            lines.append("")
        lines.append("# Local Scalekit environment (written by scripts/local_scalekit.py; valid while it runs)")
        lines += [f"{k}={_dotenv_value(variables[k])}" for k in new]
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        os.chmod(tmp, mode)  # the umask may have narrowed it
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


async def serve(args) -> int:
    from .server import Environment, StartupError

    if args.env_file and not Path(args.env_file).resolve().parent.is_dir():
        print(f"error: --env-file {args.env_file}: its folder does not exist", file=sys.stderr)
        return EXIT_USAGE
    try:
        env = Environment(port=args.port, host=args.host, tls=not args.plaintext, seed_path=args.seed,
                          data_dir=args.data_dir, auto_login=args.auto_login, access_token_ttl=args.access_token_ttl,
                          persist=args.persist, redirect_uris=args.redirect_uri,
                          post_logout_redirect_uris=args.post_logout_redirect_uri, mcp_resources=args.mcp_resource,
                          mcp_token_issuer=args.mcp_token_issuer, mcp_login_url=args.mcp_login_url,
                          webhook_urls=args.webhook_url, hostile_idp_connections=args.hostile_idp,
                          modular_sso=args.modular_sso,
                          token_claims=args.token_claim)
        env.verbose = args.verbose
        for spec in args.fault:
            env.ctx.faults.add_spec(spec)
        await env.start()
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bug: one line, no traceback (-v logs the details)
        logging.getLogger("scalekit_local").debug("start failed", exc_info=True)
        print(f"error: the local environment failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNEXPECTED

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        variables = env.env_vars()
        if args.env_file:
            try:
                write_env_file(args.env_file, variables)
            except (OSError, ValueError) as exc:  # ValueError: not UTF-8 text
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                print(f"error: cannot write --env-file {args.env_file}: {reason}", file=sys.stderr)
                return EXIT_USAGE
        if args.json:
            print(json.dumps({"url": env.url, "port": env.ctx.port, "pid": os.getpid(), "env": variables,
                              "mcp_resources": env.mcp_resource_ids}), flush=True)
        else:
            print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in variables.items()), flush=True)
        mode = "TLS (HTTP/1.1 + gRPC over h2)" if env.tls else "plaintext (HTTP/1.1 + gRPC over h2c)"
        banner = [f"Local Scalekit environment on {env.url}, {mode}.", f"Data folder: {env.data.path}"]
        if env.persister is not None:
            banner.append(f"State is saved in {env.persister.path} (--persist).")
        if args.auto_login:
            banner.append(f"Auto-login: /oauth/authorize signs in {args.auto_login} without a page.")
        if args.env_file:
            banner.append(f"Wrote {len(variables)} variables into {args.env_file}; its other lines are unchanged. "
                          "Python: load it with load_dotenv(override=True), so its CA settings beat exported ones.")
        if env.tls:  # Node reads NODE_EXTRA_CA_CERTS only at start; from a dotenv file it is too late
            ca = variables["NODE_EXTRA_CA_CERTS"]
            run = (f"env $(grep '^NODE_EXTRA_CA_CERTS=' {shlex.quote(args.env_file)}) node --env-file={shlex.quote(args.env_file)}"
                   if args.env_file else f"NODE_EXTRA_CA_CERTS={shlex.quote(ca)} node")
            banner.append(f"Node: start it with {run} app.js (it reads its CA only at start).")
        banner.append("Press Ctrl-C to stop.")
        print("\n".join(banner), file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await env.stop()
    print("Stopped.", file=sys.stderr, flush=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.mcp_login_url and not args.mcp_resource:
        parser.error("--mcp-login-url needs --mcp-resource (the MCP server that keeps its own login)")
    from .cross.faults import FaultError, FaultRegistry

    for spec in args.fault:  # checked before starting: a bad spec exits 2 with one line
        try:
            FaultRegistry().add_spec(spec)
        except FaultError as exc:
            parser.error(f"--fault {spec!r}: {exc}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.verbose:
        logging.getLogger("grpc").setLevel(logging.ERROR)
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return EXIT_OK
