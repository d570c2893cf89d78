"""scripts/test_web_app.py against apps that fail it: an app without auth, a Scalekit URL that is not
the local environment, an app that is not running, bad flags. (A passing run against every
full-stack template is in tests/template_suites/test_web_app_checker.py.)"""
from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from faulty_servers import closed_port
from script_helpers import assert_failed, assert_no_leaks, base_env, result, run_many

ROUTES = ("--login-path", "/auth/login", "--callback-path", "/auth/callback", "--api-path", "/api/me",
          "--page-path", "/dashboard", "--logout-path", "/auth/logout")


class Welcome(BaseHTTPRequestHandler):
    """An app without auth: every page is open, the 'login' too."""

    def do_GET(self):
        body = b"<h1>Welcome</h1>" if self.path != "/api/me" else b'{"sub": "anyone"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if self.path == "/api/me" else "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class NotFound(Welcome):
    """A server that is not the local Scalekit environment."""

    def do_GET(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


def serve(handler) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://localhost:{server.server_address[1]}"


@pytest.fixture(scope="module")
def runs(local_scalekit, tmp_path_factory):
    open_app, open_url = serve(Welcome)
    not_scalekit, not_scalekit_url = serve(NotFound)
    cwd = tmp_path_factory.mktemp("web-app")
    local = base_env(**local_scalekit.env_vars())
    elsewhere = base_env(**{**local_scalekit.env_vars(), "SCALEKIT_ENVIRONMENT_URL": f"https://127.0.0.1:{closed_port()}"})
    other = base_env(**{**local_scalekit.env_vars(), "SCALEKIT_ENVIRONMENT_URL": not_scalekit_url})
    jobs = {
        "not_local": ("test_web_app.py", (open_url, *ROUTES, "--json"), other, cwd),
        "no_auth": ("test_web_app.py", (open_url, *ROUTES, "--json"), local, cwd),
        "no_auth_text": ("test_web_app.py", (open_url, *ROUTES), local, cwd),
        "app_down": ("test_web_app.py", (f"http://localhost:{closed_port()}", *ROUTES, "--json"), local, cwd),
        "scalekit_unreachable": ("test_web_app.py", (open_url, *ROUTES, "--json"), elsewhere, cwd),
        "bad_flags": ("test_web_app.py", ("localhost:3000", "--login-path", "auth/login", "--callback-path", "/cb",
                                          "--api-path", "/api", "--page-path", "/", "--logout-path", "/out",
                                          "--json"), local, cwd),
        "no_variables": ("test_web_app.py", (open_url, *ROUTES, "--json"), base_env(), cwd),
        "bad_sso_flags": ("test_web_app.py", (open_url, *ROUTES, "--sso-domain", "not a domain", "--provider",
                                              "Google!", "--json"), local, cwd),
        "sso_and_provider": ("test_web_app.py", (open_url, *ROUTES, "--sso-domain", "acme.test", "--provider",
                                                 "google", "--email", "bob@globex.test", "--json"), local, cwd),
        "sso_no_auth": ("test_web_app.py", (open_url, *ROUTES, "--sso-domain", "acme.test", "--json"), local, cwd),
    }
    yield run_many(jobs)
    open_app.shutdown()
    not_scalekit.shutdown()


def test_an_app_without_auth_fails(runs, local_scalekit):
    run = result(runs, "no_auth")
    assert_failed(run, 5, "unauthenticated", "/dashboard", "not a redirect")
    statuses = {c["name"]: c["status"] for c in run.doc["checks"]}
    assert statuses["unauthenticated"] == "fail" and statuses["login redirect"] == "fail"
    assert statuses["login"] == "fail" and "cookie flags" not in statuses  # nothing after a failed login
    assert_no_leaks(run, local_scalekit.client_secret)
    text = result(runs, "no_auth_text")
    assert text.code == 5 and "FAIL  unauthenticated" in text.stdout


def test_an_app_that_is_not_running_is_a_network_error(runs):
    assert_failed(result(runs, "app_down"), 4, "connection refused")


def test_scalekit_unreachable_is_a_network_error(runs):
    assert_failed(result(runs, "scalekit_unreachable"), 4, "local environment", "connection refused")


def test_an_environment_without_local_routes_is_a_configuration_error(runs):
    assert_failed(result(runs, "not_local"), 2, "not the local Scalekit environment")


def test_bad_flags_are_configuration_errors(runs):
    run = result(runs, "bad_flags")
    assert_failed(run, 2, "must be an origin", "must start with /")


def test_missing_variables_are_configuration_errors(runs):
    assert_failed(result(runs, "no_variables"), 2, "SCALEKIT_ENVIRONMENT_URL")


def test_bad_sso_and_provider_flags_are_configuration_errors(runs):
    assert_failed(result(runs, "bad_sso_flags"), 2, "must be a domain like acme.test", "must be a provider name")
    assert_failed(result(runs, "sso_and_provider"), 2, "two different logins", "is not a user of --sso-domain")


def test_an_app_without_auth_fails_the_sso_mode_too(runs, local_scalekit):
    run = result(runs, "sso_no_auth")
    assert_failed(run, 5, "unauthenticated", "not a redirect")
    assert_no_leaks(run, local_scalekit.client_secret)


def test_a_login_path_with_a_query_gets_more_parameters_after_an_ampersand():
    """--login-path '/auth/sso?email={email}': the open-redirect attack adds ?next=... with & (a
    second ? would end up inside the email)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from scalekit_checks.webapp import Target

    sso = Target("http://localhost:3100", {"login": "/auth/sso?email={email}"}, "https://127.0.0.1:8443")
    assert sso.login_url("bob+1@acme.test") == "http://localhost:3100/auth/sso?email=bob%2B1@acme.test"
    assert sso.login_url("bob@acme.test", "?next=%2F%2Fevil.test") == \
        "http://localhost:3100/auth/sso?email=bob@acme.test&next=%2F%2Fevil.test"
    plain = Target("http://localhost:3000", {"login": "/auth/login"}, "https://127.0.0.1:8443")
    assert plain.login_url("alice@acme.test", "?next=%2F") == "http://localhost:3000/auth/login?next=%2F"
