"""The command-line frame the three scripts share: common flags, exit codes in --help, and a
runner that turns every outcome (including a crash) into a report and an exit code."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Callable

from . import net, settings
from .report import CheckFailed, Exit, Report

EXIT_CODES_HELP = """\
exit codes:
  0  all checks passed (warnings allowed)
  2  configuration: a variable is missing or malformed, a bad flag, the local clock
  3  credentials or authorization: wrong client id or secret, redirect URI not allowed, login refused
  4  network or TLS: DNS, connection refused, untrusted certificate, timeout
  5  protocol: the server answered something unexpected (HTTP 5xx, invalid JSON, wrong issuer, ...)

Output: one line per check on stdout, or with --json one JSON document on stdout
(schema: scripts/schemas/report.schema.json). Diagnostics go to stderr. Never prompts.
"""


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600 seconds")
    return value


def make_parser(prog: str, description: str, examples: str, network: bool,
                timeout_help: str = "limit for each network step (default: 10)") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=f"examples:\n{examples}\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout instead of check lines")
    add_env_file_argument(parser)
    if network:
        parser.add_argument("--local", action="store_true",
                            help="start the bundled local Scalekit environment in this process and check against it "
                                 "(ignores SCALEKIT_* variables and .env)")
        parser.add_argument("--data-dir", metavar="DIR",
                            help="--local only: keep the local environment's CA, TLS certificate and signing key in "
                                 "this folder (default: a temporary folder, deleted when the run ends)")
    else:  # accepted so that the same flags work for all three scripts
        timeout_help = "accepted for uniformity with the other scripts; this one makes no network calls"
    parser.add_argument("--timeout", type=positive_seconds, default=None, metavar="SECONDS", help=timeout_help)
    return parser


def add_env_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", metavar="PATH",
                        help="read variables from this file, e.g. path/to/your-app/.env (default: .env in the "
                             "current folder, if present); its values win over the environment, as with "
                             "load_dotenv(override=True), and its CA variables (REQUESTS_CA_BUNDLE, SSL_CERT_FILE, "
                             "...) apply to this run")


def read_env_file(args: argparse.Namespace, report: Report) -> settings.Settings:
    """The `env file` check: --env-file (or .env in the current folder) merged over the process
    environment, its CA variables applied to this process. Stops with exit 2 on a missing named file."""
    with report.check("env file") as c:
        try:
            loaded = settings.load(args.env_file or ".env", explicit=bool(args.env_file))
        except settings.SettingsError as exc:
            raise CheckFailed(Exit.CONFIG, str(exc)) from None
        if loaded.env_file:
            trust = f"; CA settings from it: {', '.join(loaded.trust_from_file)}" if loaded.trust_from_file else ""
            c.ok(f"read {loaded.env_file}; its values win over the environment{trust}",
                 {"path": loaded.env_file, "trust_variables": loaded.trust_from_file})
        else:
            c.skip("no .env in the current folder; using the process environment only (name your app's file with "
                   "--env-file path/to/your-app/.env)")
    return loaded


def load_settings(args: argparse.Namespace, report: Report, variables_for: str = "full-stack", **local_options):
    """Settings from --local, or from the env file and the process environment, each variable
    checked on its own line. Returns (settings, local environment or None); stops with exit 2
    when a required value is unusable. `variables_for`: "mcp" checks an MCP server's variables
    (settings.check_mcp_server). `local_options` go to local.start()."""
    local_env = None
    if getattr(args, "data_dir", None) and not args.local:
        raise CheckFailed(Exit.CONFIG, "--data-dir only applies with --local")
    if getattr(args, "local", False):
        from . import local

        local_env, loaded = local.start(report, data_dir=args.data_dir, **local_options)
    else:
        loaded = read_env_file(args, report)
    usable = settings.check_all(loaded, report, optional=local_env is None, path=variables_for)
    report.info["environment_url"] = loaded.get(settings.ENV_URL)
    if not usable:
        stop = CheckFailed(Exit.CONFIG, "configuration is not usable")
        stop.recorded = True  # the failing variables are already reported
        raise stop
    return loaded, local_env


READER_GONE = CheckFailed(Exit.PROTOCOL, "stdout closed")  # a marker: nothing more is printed


def _reader_gone() -> int:
    """Whoever read stdout went away (`| head`): stop quietly, with the exit status a shell gives a
    process that SIGPIPE ended. The rest of the output goes to /dev/null so Python's own flush at
    exit cannot fail either; cleanup (temporary folders, the local environment) still runs."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def run(script: str, parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace, Report], None]) -> int:
    args = parser.parse_args()  # bad flags: argparse prints usage and exits 2
    report = Report(script, json_mode=args.json)
    unexpected = None
    try:
        body(args, report)
    except CheckFailed as exc:
        if not getattr(exc, "recorded", False):
            unexpected = exc
    except KeyboardInterrupt:
        unexpected = CheckFailed(Exit.NETWORK, "interrupted")
    except BrokenPipeError:
        unexpected = READER_GONE
    except Exception as exc:  # a bug or an answer we did not foresee: one line, no traceback
        unexpected = CheckFailed(Exit.PROTOCOL, f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    try:
        code = _reader_gone() if unexpected is READER_GONE else report.finish(unexpected)
    except BrokenPipeError:
        code = _reader_gone()
    if net.abandoned_threads.is_set():
        # A timed-out SDK call is still blocked in its thread; do not wait for it.
        from . import local

        local.remove_temp_dirs()  # os._exit skips atexit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
