"""scripts/validate_env.py: every variable checked on its own line, bad input gives exit 2 and one
clear error, the secret is never printed."""
from __future__ import annotations

import pytest
from dotenv import dotenv_values
from script_helpers import REPO, assert_failed, assert_no_leaks, base_env, run_script

SECRET = "test_5xKq8vRz2NwT7bLm4PcY9hJd3FgS6aUeQ"
GOOD = {
    "SCALEKIT_ENVIRONMENT_URL": "https://acme-dev.scalekit.dev",
    "SCALEKIT_CLIENT_ID": "skc_58327480989122566",
    "SCALEKIT_CLIENT_SECRET": SECRET,
}


def validate(workdir, *args, **variables):
    return run_script("validate_env.py", *args, env=base_env(**variables), cwd=workdir)


def check(run, name):
    return next(c for c in run.doc["checks"] if c["name"] == name)


def test_reads_dotenv_and_reports_each_variable(workdir):
    (workdir / ".env").write_text(
        "".join(f"{k}={v}\n" for k, v in GOOD.items())
        + "SCALEKIT_REDIRECT_URI=http://localhost:3000/auth/callback\n"
        + "SCALEKIT_POST_LOGOUT_REDIRECT_URI=https://app.example.com/\n")
    run = validate(workdir, "--json")
    assert run.code == 0, run
    assert run.doc["ok"] and run.doc["environment_url"] == GOOD["SCALEKIT_ENVIRONMENT_URL"]
    statuses = {c["name"]: c["status"] for c in run.doc["checks"]}
    assert statuses == {"env file": "pass", "SCALEKIT_ENVIRONMENT_URL": "pass", "SCALEKIT_CLIENT_ID": "pass",
                        "SCALEKIT_CLIENT_SECRET": "pass", "APP_URL": "skip", "SCALEKIT_REDIRECT_URI": "pass",
                        "SCALEKIT_POST_LOGOUT_REDIRECT_URI": "pass"}
    assert ".env" in check(run, "SCALEKIT_CLIENT_ID")["message"]
    assert check(run, "SCALEKIT_CLIENT_SECRET")["data"] == {"length": len(SECRET)}
    assert_no_leaks(run, SECRET)


def test_text_output_is_one_line_per_check(workdir):
    run = validate(workdir, **GOOD)
    assert run.code == 0, run
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert [line.split()[0] for line in lines[:7]] == ["SKIP", "PASS", "PASS", "PASS", "SKIP", "SKIP", "SKIP"], run
    assert lines[-1].startswith("OK:"), run
    assert run.stderr == "", run
    assert_no_leaks(run, SECRET)


def test_env_file_wins_over_process_environment(workdir):
    # As in an app that calls load_dotenv(override=True): the file's value, and the line says so.
    (workdir / "app.env").write_text("SCALEKIT_CLIENT_ID=skc_111111\nSCALEKIT_CLIENT_SECRET=" + SECRET + "\n")
    run = validate(workdir, "--env-file", "app.env", "--json",
                   SCALEKIT_ENVIRONMENT_URL=GOOD["SCALEKIT_ENVIRONMENT_URL"], SCALEKIT_CLIENT_ID="skc_222222")
    assert run.code == 0, run
    assert check(run, "SCALEKIT_CLIENT_ID")["data"]["value"] == "skc_111111"
    assert "app.env" in check(run, "SCALEKIT_CLIENT_ID")["message"]
    assert "environment" in check(run, "SCALEKIT_ENVIRONMENT_URL")["message"]  # not in the file: from the environment


def test_trailing_slash_is_normalised_with_a_warning(workdir):
    run = validate(workdir, "--json", **(GOOD | {"SCALEKIT_ENVIRONMENT_URL": "https://acme-dev.scalekit.dev/"}))
    assert run.code == 0, run
    url_check = check(run, "SCALEKIT_ENVIRONMENT_URL")
    assert url_check["status"] == "warn" and "trailing slash" in url_check["message"]
    assert run.doc["environment_url"] == "https://acme-dev.scalekit.dev"


def test_all_missing_variables_are_reported_together(workdir):
    run = validate(workdir, "--json")
    assert_failed(run, 2, "SCALEKIT_ENVIRONMENT_URL", "not set")
    failed = [c["name"] for c in run.doc["checks"] if c["status"] == "fail"]
    assert failed == ["SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET"]
    assert run.doc["error"]["category"] == "configuration"


BAD_INPUT = [
    ("no scheme", {"SCALEKIT_ENVIRONMENT_URL": "acme-dev.scalekit.dev"}, "has no scheme"),
    ("http for a remote host", {"SCALEKIT_ENVIRONMENT_URL": "http://acme-dev.scalekit.dev"}, "use https://"),
    ("a path", {"SCALEKIT_ENVIRONMENT_URL": "https://acme-dev.scalekit.dev/api/v1"}, "without a path"),
    ("a query", {"SCALEKIT_ENVIRONMENT_URL": "https://acme-dev.scalekit.dev?x=1"}, "query"),
    ("a bad port", {"SCALEKIT_ENVIRONMENT_URL": "https://acme-dev.scalekit.dev:99999"}, "not a valid URL"),
    ("the docs placeholder", {"SCALEKIT_ENVIRONMENT_URL": "https://your-env.scalekit.com"}, "placeholder"),
    ("ftp", {"SCALEKIT_ENVIRONMENT_URL": "ftp://acme-dev.scalekit.dev"}, "https://"),
    ("quotes", {"SCALEKIT_ENVIRONMENT_URL": '"https://acme-dev.scalekit.dev"'}, "quotes"),
    ("client id prefix", {"SCALEKIT_CLIENT_ID": "client_123"}, "should start with skc_"),
    ("m2m client id", {"SCALEKIT_CLIENT_ID": "m2morg_123456"}, "m2morg_"),
    ("short secret", {"SCALEKIT_CLIENT_SECRET": "abc123"}, "too short"),
    ("placeholder secret", {"SCALEKIT_CLIENT_SECRET": "test_sk_abc123..."}, "placeholder"),
    ("secret with a space", {"SCALEKIT_CLIENT_SECRET": SECRET + " x"}, "whitespace"),
    ("http redirect for a remote host", {"SCALEKIT_REDIRECT_URI": "http://app.example.com/callback"}, "use https://"),
    ("relative redirect", {"SCALEKIT_REDIRECT_URI": "/auth/callback"}, "absolute"),
    ("redirect with a fragment", {"SCALEKIT_REDIRECT_URI": "https://app.example.com/cb#x"}, "fragment"),
    ("wildcard post-logout", {"SCALEKIT_POST_LOGOUT_REDIRECT_URI": "https://*.example.com/"}, "wildcard"),
    ("APP_URL http for a remote host", {"APP_URL": "http://app.example.com"}, "APP_URL: 'http://app.example.com' uses http:// for the remote host"),
    ("APP_URL with a path", {"APP_URL": "https://app.example.com/auth/callback"}, "APP_URL: 'https://app.example.com/auth/callback' must be the app's origin without a path"),
    ("APP_URL with a query", {"APP_URL": "https://app.example.com/?next=/x"}, "APP_URL: 'https://app.example.com/?next=/x' must not have a query"),
    ("APP_URL without a scheme", {"APP_URL": "localhost:3000"}, "APP_URL: 'localhost:3000' has no scheme"),
    ("APP_URL with trailing junk", {"APP_URL": "http://localhost:3000 "}, "APP_URL: 'http://localhost:3000 ' has leading or trailing whitespace"),
    ("APP_URL placeholder", {"APP_URL": "https://your-app.example.com"}, "APP_URL: 'https://your-app.example.com' looks like a placeholder"),
    ("redirect URI off APP_URL's origin", {"APP_URL": "http://localhost:3000",
                                           "SCALEKIT_REDIRECT_URI": "http://127.0.0.1:3000/auth/callback"},
     "SCALEKIT_REDIRECT_URI: 'http://127.0.0.1:3000/auth/callback' is not on APP_URL's origin http://localhost:3000"),
]


@pytest.mark.parametrize("variables,fragment", [case[1:] for case in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_fails_with_exit_2_and_one_line(workdir, variables, fragment):
    run = validate(workdir, **(GOOD | variables))
    assert_failed(run, 2, fragment)
    assert_no_leaks(run, SECRET)


@pytest.mark.parametrize("template", ["fullstack-fastapi", "fullstack-express", "fullstack-nextjs", "fullstack-django",
                                      "fullstack-go", "sso-fastapi", "sso-express", "sso-nextjs"])
def test_templates_app_url_passes_and_names_the_callback(workdir, template):
    """The APP_URL of each web template's .env.example, with its own SCALEKIT_REDIRECT_URI if it sets one."""
    example = dotenv_values(REPO / "templates" / template / ".env.example")
    mine = {k: v for k, v in example.items() if k in ("APP_URL", "SCALEKIT_REDIRECT_URI") and v}
    run = validate(workdir, "--json", **(GOOD | mine))
    assert run.code == 0, run
    app = check(run, "APP_URL")
    assert app["status"] == "pass", run
    assert app["data"] == {"value": mine["APP_URL"], "redirect_uri": mine["APP_URL"] + "/auth/callback"}
    assert "must be registered exactly" in app["message"]


def test_app_url_trailing_slash_is_removed_with_a_warning(workdir):
    run = validate(workdir, "--json", **(GOOD | {"APP_URL": "https://app.example.com/"}))
    assert run.code == 0, run
    app = check(run, "APP_URL")
    assert app["status"] == "warn" and "https://app.example.com//auth/callback" in app["message"], app
    assert app["data"]["redirect_uri"] == "https://app.example.com/auth/callback"


def test_redirect_uri_on_app_urls_origin_passes(workdir):
    run = validate(workdir, "--json", **(GOOD | {"APP_URL": "https://app.example.com:8443",
                                                 "SCALEKIT_REDIRECT_URI": "https://app.example.com:8443/cb"}))
    assert run.code == 0, run
    assert check(run, "SCALEKIT_REDIRECT_URI")["status"] == "pass"
    assert check(run, "SCALEKIT_POST_LOGOUT_REDIRECT_URI")["message"] == "not set (optional: the templates derive it from APP_URL)"


def test_old_variable_name_gets_a_rename_hint(workdir):
    variables = {k: v for k, v in GOOD.items() if k != "SCALEKIT_ENVIRONMENT_URL"}
    run = validate(workdir, SCALEKIT_ENV_URL=GOOD["SCALEKIT_ENVIRONMENT_URL"], **variables)
    assert_failed(run, 2, "SCALEKIT_ENV_URL is set: rename it to SCALEKIT_ENVIRONMENT_URL")


def test_http_is_allowed_for_loopback(workdir):
    for url in ("http://localhost:8080", "http://127.0.0.1:9000"):
        run = validate(workdir, **(GOOD | {"SCALEKIT_ENVIRONMENT_URL": url}))
        assert run.code == 0, run


def test_missing_env_file_is_a_configuration_error(workdir):
    run = validate(workdir, "--env-file", "missing.env", "--json", **GOOD)
    assert_failed(run, 2, "missing.env does not exist")


def test_help_lists_examples_and_exit_codes(workdir):
    run = validate(workdir, "--help")
    assert run.code == 0, run
    for text in ("examples:", "python scripts/validate_env.py --json", "exit codes:", "--env-file"):
        assert text in run.stdout


def test_unknown_flag_is_a_configuration_error(workdir):
    run = validate(workdir, "--no-such-flag")
    assert run.code == 2, run
    assert "unrecognized arguments" in run.stderr
