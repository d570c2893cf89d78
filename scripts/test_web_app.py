#!/usr/bin/env python3
"""Check a running web app's Scalekit login from outside, like a browser and like an attacker.

It logs in for real through the local Scalekit environment the app is configured with (its login
pages, over HTTP), then checks what a correct integration does: protected pages redirect to the
login and APIs answer 401 without a session; the login redirect carries state, nonce and PKCE;
cookies are HttpOnly and SameSite=Lax; the session id changes at login; logout ends both the app's
and Scalekit's session. Then it attacks: missing or foreign state, another browser's code, a code
whose ID token has another nonce, code replay, open redirects at login and logout, tampered and
forged session cookies and bearer tokens. With short access tokens (local environment started with
--access-token-ttl 20) it also checks refresh, ten concurrent requests at expiry, and that the
refresh token dies at logout. It never prints tokens, cookies or the client secret.

With --sso-domain it checks a modular-SSO app (one that keeps its own users and sessions): it logs
in through the local environment's SSO connection for that domain (its simulated identity provider
page) as a user of that domain, checks that the login reached that connection, and runs the attacks
that apply (state, login CSRF, nonce, code replay, open redirects, cookie flags, forged session
cookies, logout ending the session on the server). With --provider it logs in with that social
provider's button on Scalekit's login page instead of a password.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap  # noqa: E402  (standard library only: switches to the skill's venv, creating it on first use)

_bootstrap.use_skill_venv()

import re  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import requests  # noqa: E402

from scalekit_checks import cli, webapp  # noqa: E402
from scalekit_checks.report import CheckFailed, Exit, Report  # noqa: E402

EXAMPLES = """\
  python scripts/test_web_app.py http://localhost:3000 --env-file path/to/your-app/.env --login-path /auth/login \\
      --callback-path /auth/callback --api-path /api/me --page-path /dashboard --logout-path /auth/logout
  python scripts/test_web_app.py http://localhost:3000 ... --json
  python scripts/test_web_app.py http://localhost:3000 ... --email bob@acme.test --password bob-password
  python scripts/test_web_app.py http://localhost:3000 ... --provider google
  python scripts/test_web_app.py http://localhost:3100 --env-file path/to/your-app/.env --sso-domain acme.test \
      --login-path '/auth/sso?email={email}' --login-page-path /login --callback-path /auth/callback \
      --api-path /api/me --page-path /dashboard --logout-path /logout --logout-method POST

First start the local Scalekit environment with short access tokens, writing into your app's .env,
and start your app with that file:
  python scripts/local_scalekit.py --access-token-ttl 20 --env-file path/to/your-app/.env
Register nothing: the environment already allows http://localhost:3000/auth/callback and
http://localhost:3000/ (add --redirect-uri and --post-logout-redirect-uri for other URLs).
"""
NETWORK_TIMEOUT = 10.0
MAX_REFRESH_TTL = 60  # seconds; longer access tokens would make the refresh checks wait too long


def build_parser():
    parser = cli.make_parser("test_web_app.py", __doc__.strip().splitlines()[0], EXAMPLES, network=False)
    next(a for a in parser._actions if a.dest == "timeout").help = \
        f"limit for each request (default: {NETWORK_TIMEOUT:g})"
    parser.add_argument("url", metavar="URL", help="the app's origin, e.g. http://localhost:3000")
    for name, example in (("login", "/auth/login"), ("callback", "/auth/callback"), ("api", "/api/me"),
                          ("page", "/dashboard"), ("logout", "/auth/logout")):
        what = {"login": "starts the login (redirects to Scalekit)", "callback": "the registered redirect URI's path",
                "api": "a protected API route (401 without a session)",
                "page": "a protected page (redirects to the login without a session)",
                "logout": "logs out (redirects to Scalekit's /oidc/logout)"}[name]
        parser.add_argument(f"--{name}-path", required=True, metavar="PATH", help=f"{what}, e.g. {example}")
    parser.add_argument("--after-logout-path", default="/", metavar="PATH",
                        help="the registered post-logout URL's path (default: /)")
    parser.add_argument("--login-page-path", metavar="PATH",
                        help="the app's sign-in page, where protected pages may redirect instead of the login "
                             "route, e.g. /login (an email-first page in front of SSO)")
    parser.add_argument("--logout-method", choices=("GET", "POST"), default=None,
                        help="how the app's logout button sends the logout (default: GET; POST with --sso-domain)")
    parser.add_argument("--sso-domain", metavar="DOMAIN",
                        help="modular SSO: log in through the local environment's SSO connection of this domain "
                             "(e.g. acme.test, globex.test) as a user of that domain; --login-path starts the SSO "
                             "login, {email} in it is replaced by the user's email")
    parser.add_argument("--provider", metavar="NAME",
                        help="log in with this social provider's button on Scalekit's login page (the local "
                             "environment's: google, github, microsoft, gitlab, linkedin, salesforce)")
    parser.add_argument("--email", default=None,
                        help="user to log in as (default: alice@acme.test; with --sso-domain sso-user@DOMAIN, "
                             "which the identity provider signs in as a new member)")
    parser.add_argument("--password", default="alice-password", help="that user's password (default: the seed's)")
    parser.add_argument("--attacker-email", default=None,
                        help="another user, the attacker's account (default: carol@globex.test; with --sso-domain "
                             "sso-attacker@DOMAIN)")
    parser.add_argument("--attacker-password", default="carol-password", help="the attacker's password")
    parser.add_argument("--require-bearer", action="store_true",
                        help="the API must also accept a valid access token as `Authorization: Bearer`")
    return parser


def check_arguments(args) -> None:
    problems = []
    if args.sso_domain:
        args.sso_domain = args.sso_domain.strip().lower()
    default_user, default_attacker = (("sso-user@" + (args.sso_domain or ""), "sso-attacker@" + (args.sso_domain or ""))
                                      if args.sso_domain else ("alice@acme.test", "carol@globex.test"))
    args.email = args.email or default_user
    args.attacker_email = args.attacker_email or default_attacker
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        problems.append(f"URL {args.url!r} must be an origin like http://localhost:3000")
    for name in ("login", "callback", "api", "page", "logout", "after_logout"):
        value = getattr(args, f"{name}_path")
        if not value.startswith("/"):
            problems.append(f"--{name.replace('_', '-')}-path {value!r} must start with /")
    if args.sso_domain is not None and not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", args.sso_domain):
        problems.append(f"--sso-domain {args.sso_domain!r} must be a domain like acme.test")
    if args.sso_domain and args.provider:
        problems.append("--sso-domain and --provider are two different logins: use one")
    if args.provider is not None and not re.fullmatch(r"[a-z]+", args.provider):
        problems.append(f"--provider {args.provider!r} must be a provider name like google")
    if args.sso_domain and args.email and not args.email.lower().endswith("@" + args.sso_domain):
        problems.append(f"--email {args.email} is not a user of --sso-domain {args.sso_domain}")
    if args.email == args.attacker_email:
        problems.append("--attacker-email must be another user than --email")
    if problems:
        raise CheckFailed(Exit.CONFIG, "; ".join(problems))


def body(args, report: Report) -> None:
    report.info["app_url"] = args.url.rstrip("/")
    with report.check("arguments") as c:
        check_arguments(args)
        c.ok(f"checking {args.url.rstrip('/')}")
    settings, _ = cli.load_settings(args, report)
    routes = {name: getattr(args, f"{name}_path") for name in ("login", "callback", "api", "page", "logout",
                                                               "after_logout")}
    if args.login_page_path:
        routes["login_page"] = args.login_page_path
    target = webapp.Target(args.url, routes, settings.env_url, settings.get("SCALEKIT_CLIENT_ID"),
                           settings.get("SCALEKIT_CLIENT_SECRET"), timeout=args.timeout or NETWORK_TIMEOUT,
                           user=(args.email, args.password), attacker=(args.attacker_email, args.attacker_password),
                           sso_domain=args.sso_domain, provider=args.provider,
                           logout_method=args.logout_method or ("POST" if args.sso_domain else "GET"))
    report.add_secret(args.password)
    report.add_secret(args.attacker_password)
    with report.check("local environment") as c:
        try:
            health = requests.get(target.env_url + "/_local/health", timeout=target.timeout)
        except requests.RequestException as exc:
            raise (webapp.net.network_failure(exc, "local environment", target.env_url, target.timeout)
                   or CheckFailed(Exit.NETWORK, f"local environment: {target.env_url} did not answer")) from None
        if health.status_code != 200:
            raise CheckFailed(Exit.CONFIG, f"{target.env_url} is not the local Scalekit environment: this check logs "
                                           "in through its pages; start scripts/local_scalekit.py and point the app "
                                           "at it")
        ttl = webapp.access_token_ttl(target)
        c.ok(f"{target.env_url} (access tokens live {ttl if ttl is not None else 'unknown'} s)", {"ttl": ttl})
    with report.check("app") as c:
        webapp.Browser(target).get(target.url + routes["page"], "app")
        c.ok(f"{target.url} answers")

    def run(name: str, check, *check_args):
        with report.check(name) as c:
            try:
                result = check(target, *check_args)
            except CheckFailed as exc:
                for secret in target.secrets:
                    report.add_secret(secret)
                c.fail(exc.code, exc.message, exc.data)
                return None
            message, value = result if isinstance(result, tuple) else (result, None)
            c.ok(message)
            return value

    run("unauthenticated", webapp.check_unauthenticated)
    run("login redirect", webapp.check_login_redirect)
    login = run("login", webapp.check_login)
    for secret in target.secrets:
        report.add_secret(secret)
    if login is None:
        raise _stop(report, "the login failed, so the remaining checks cannot run")
    run("cookie flags", webapp.check_cookie_flags, login)
    run("session id changes at login", webapp.check_session_id_changes, login)
    run("logout", webapp.check_logout, webapp.app_login(target))
    run("state", webapp.check_state)
    run("login csrf", webapp.check_login_csrf)
    run("nonce", webapp.check_leaked_state)
    run("code replay", webapp.check_code_replay)
    run("open redirects", webapp.check_open_redirects)
    run("forged session cookie", webapp.check_forged_cookie, webapp.app_login(target))
    if args.sso_domain:
        with report.check("forged bearer token") as c:
            c.skip("modular SSO: the app keeps its own sessions and takes no Scalekit access tokens")
        with report.check("refresh") as c:
            c.skip("modular SSO: the app keeps its own sessions, so there is no Scalekit token to refresh")
        for secret in target.secrets:
            report.add_secret(secret)
        return
    run("forged bearer token", webapp.check_forged_bearer, args.require_bearer)
    if ttl is None or ttl > MAX_REFRESH_TTL:
        with report.check("refresh") as c:
            c.skip(f"access tokens live {ttl} s; start the local environment with --access-token-ttl 20 to check "
                   "refresh, concurrent refresh and the refresh token after logout")
    else:
        with report.check("refresh setup") as c:
            report.note(f"waiting {ttl + 2} s for access tokens to expire")
            sessions = webapp.ExpiringSessions(target, ttl)
            sessions.wait()
            c.ok("three sessions with expired access tokens (one logged out)")
        run("refresh", webapp.check_refresh, sessions)
        run("concurrent refresh", webapp.check_concurrent_refresh, sessions)
        run("refresh token after logout", webapp.check_refresh_after_logout, sessions)
    for secret in target.secrets:
        report.add_secret(secret)


def _stop(report: Report, message: str) -> CheckFailed:
    stop = CheckFailed(Exit.PROTOCOL, message)
    stop.recorded = True  # the failing check is already reported
    return stop


def main() -> int:
    return cli.run("test_web_app", build_parser(), body)


if __name__ == "__main__":
    sys.exit(main())
