"""scripts/test_auth_flow.py: whole logins against the local Scalekit environment (headless with
--local, and the real-environment mode where this test plays the browser), and the ways a login
goes wrong. The matrix runs start together in parallel; each test checks one of them."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest
import requests
import yaml
from faulty_servers import closed_port
from script_helpers import SCRIPTS, assert_failed, assert_no_leaks, base_env, result, run_many

WRONG_SECRET = "test_5xKq8vRz2NwT7bLm4PcY9hJd3FgS6aUeQ"
SEED_ORG_ALICE = "org_70000000000001001"
SEED_ORG_OTHER = "org_70000000000001002"
SEED_SSO_CONNECTION = "conn_70000000000002001"
FLOW_STEPS = ("sdk client", "authorization url", "login", "code exchange", "id token", "access token", "refresh",
              "refreshed access token", "logout url", "logout")


@dataclass
class Case:
    args: tuple
    code: int
    fragments: tuple = ()
    env: str = "none"  # "none": no SCALEKIT_* variables; "shared": the local_scalekit fixture's; "wrong secret"


def free_loopback_uri(path: str = "/callback") -> str:
    return f"http://127.0.0.1:{closed_port()}{path}"


CASES = {
    "full_stack": Case(("--local", "--json"), 0),
    "full_stack_text": Case(("--local",), 0),
    "sso": Case(("--local", "--path", "sso", "--json"), 0),
    "sso_organization": Case(("--local", "--path", "sso", "--organization-id", SEED_ORG_ALICE, "--json"), 0),
    "no_offline_access": Case(("--local", "--scopes", "openid profile email", "--json"), 0),
    "redirect_uri_not_allowed": Case(("--local", "--redirect-uri", "REDIRECT", "--json"), 3,
                                     ("refused the login request", "is not registered")),
    "sso_domain_acme": Case(("--local", "--path", "sso", "--domain", "acme.test", "--json"), 0),
    "sso_domain_globex": Case(("--local", "--path", "sso", "--domain", "globex.test", "--json"), 0),
    "sso_domain_without_connection": Case(("--local", "--path", "sso", "--domain", "initech.test"), 2,
                                          ("no SSO connection with a user for --domain initech.test",)),
    # Alice (acme.test) pushed through Globex's IdP: it signs in only users of globex.test.
    "not_a_member": Case(("--local", "--path", "sso", "--organization-id", SEED_ORG_OTHER, "--login-as",
                          "alice@acme.test"), 3, ("access_denied", "not a user of connection")),
    "wrong_secret": Case(("--redirect-uri", "REDIRECT", "--json"), 3, ("sdk client", "invalid_client"),
                         env="wrong secret"),
    # 3 s, not 1: the SDK client's own calls share --timeout and must finish first on a busy machine
    "no_callback_in_time": Case(("--redirect-uri", "REDIRECT", "--timeout", "3", "--json"), 4,
                                ("no callback arrived", "within 3 s"), env="shared"),
    "mcp_unknown_resource": Case(("--local", "--path", "mcp", "--resource-id", "res_70000000000009001", "--json"), 5,
                                 ("is not an MCP resource",)),
    "missing_variables": Case(("--redirect-uri", "REDIRECT", "--json"), 2, ("SCALEKIT_ENVIRONMENT_URL", "not set")),
    "sso_without_target": Case(("--path", "sso"), 2, ("--path sso needs",), env="shared"),
    "mcp_without_resource": Case(("--path", "mcp"), 2, ("--path mcp needs --resource-id",), env="shared"),
    "remote_redirect_uri": Case(("--redirect-uri", "https://app.example.com/callback"), 2,
                                ("must be http://localhost",), env="shared"),
    "bad_timeout": Case(("--local", "--timeout", "soon"), 2),
}


@pytest.fixture(scope="module")
def results(local_scalekit, tmp_path_factory):
    local = local_scalekit.env_vars()
    cwd = tmp_path_factory.mktemp("test-auth-flow")
    jobs = {}
    for name, case in CASES.items():
        env = base_env()
        if case.env == "shared":
            env.update(local)
        elif case.env == "wrong secret":
            env.update(local | {"SCALEKIT_CLIENT_SECRET": WRONG_SECRET})
        args = tuple(free_loopback_uri() if a == "REDIRECT" else a for a in case.args)
        jobs[name] = ("test_auth_flow.py", args, env, cwd)
    return run_many(jobs), local


def statuses(run) -> dict:
    return {c["name"]: c["status"] for c in run.doc["checks"]}


def data(run, check: str) -> dict:
    return next(c["data"] for c in run.doc["checks"] if c["name"] == check)


def test_full_stack_login_passes_every_step(results):
    run = result(results[0], "full_stack")
    assert run.code == 0, run
    assert run.doc["path"] == "full-stack" and run.doc["local"] is True
    got = statuses(run)
    assert all(got[step] == "pass" for step in FLOW_STEPS), run
    access = data(run, "access token")["claims"]
    assert access["iss"] == run.doc["environment_url"]
    assert access["sub"].startswith("usr_") and access["exp"] > access["iat"]
    assert "offline_access" in access["scope"].split() and "email" not in access
    idt = data(run, "id token")["claims"]
    assert idt["email"] == "alice@acme.test" and idt["amr"]
    assert "code_challenge=" in data(run, "authorization url")["url"]
    assert "code_challenge_method=S256" in data(run, "authorization url")["url"]
    assert "id_token_hint=[redacted" in data(run, "logout url")["url"]
    assert_no_leaks(run, results[1]["SCALEKIT_CLIENT_SECRET"])


def test_text_report_ends_with_a_verdict(results):
    run = result(results[0], "full_stack_text")
    assert run.code == 0, run
    lines = run.stdout.rstrip().splitlines()
    assert lines[-1].startswith("OK:"), run
    assert any(line.startswith("PASS  access token") and "aud=[skc_" in line for line in lines), run
    assert_no_leaks(run, results[1]["SCALEKIT_CLIENT_SECRET"])


@pytest.mark.parametrize("name", ["sso", "sso_organization"])
def test_sso_login_lands_in_the_organization(results, name):
    run = result(results[0], name)
    assert run.code == 0, run
    assert statuses(run)["sso"] == "pass", run
    assert data(run, "sso")["organization_id"] == SEED_ORG_ALICE
    if name == "sso":  # no target given: the seed's SSO connection
        assert data(run, "sso")["connection_id"] == SEED_SSO_CONNECTION
    assert_no_leaks(run, results[1]["SCALEKIT_CLIENT_SECRET"])


@pytest.mark.parametrize("name, organization, connection, email", [
    ("sso_domain_acme", SEED_ORG_ALICE, SEED_SSO_CONNECTION, "alice@acme.test"),
    ("sso_domain_globex", SEED_ORG_OTHER, "conn_70000000000002002", "carol@globex.test")])
def test_sso_by_domain_logs_in_a_user_of_that_domain_through_its_connection(results, name, organization, connection,
                                                                            email):
    run = result(results[0], name)
    assert run.code == 0, run
    assert data(run, "sso") == {"organization_id": organization, "connection_id": connection}
    claims = data(run, "id token")["claims"]
    assert claims["email"] == email and claims["amr"] == [connection], claims  # not the password connection
    assert_no_leaks(run, results[1]["SCALEKIT_CLIENT_SECRET"])


def test_without_offline_access_refresh_is_skipped(results):
    run = result(results[0], "no_offline_access")
    assert run.code == 0, run
    assert statuses(run)["refresh"] == "skip", run
    assert "offline_access" in next(c["message"] for c in run.doc["checks"] if c["name"] == "refresh")
    assert "refreshed access token" not in statuses(run)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.code != 0])
def test_failure_gives_its_exit_code_and_one_line(results, name):
    runs, local = results
    case = CASES[name]
    run = result(runs, name)
    if name == "bad_timeout":  # argparse's own error, exit 2
        assert run.code == 2 and "--timeout" in run.stderr, run
        return
    assert_failed(run, case.code, *case.fragments)
    assert_no_leaks(run, local["SCALEKIT_CLIENT_SECRET"], WRONG_SECRET)


def test_waiting_for_the_browser_prints_the_url_and_gives_up_on_time(results):
    run = result(results[0], "no_callback_in_time")
    assert re.search(r"^https://127\.0\.0\.1:\d+/oauth/authorize\?response_type=code&", run.stderr, re.M), run
    login = next(c for c in run.doc["checks"] if c["name"] == "login")
    assert 3000 <= login["duration_ms"] < 3000 + 1000, run  # waited --timeout, not the 300 s default


def test_port_in_use_is_a_configuration_error(workdir, local_scalekit):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        run = run_many({"busy": ("test_auth_flow.py", ("--redirect-uri", f"http://127.0.0.1:{port}/callback"),
                                 base_env(**local_scalekit.env_vars()), workdir)})
    assert_failed(result(run, "busy"), 2, f"port {port} is already in use")


# ---- real-environment mode: the script prints the URL and waits; this test is the browser ----------

def seed_with_callback(tmp_path, redirect_uri: str) -> str:
    from scalekit_local import DEFAULT_SEED_PATH

    seed = yaml.safe_load(open(DEFAULT_SEED_PATH, encoding="utf-8"))
    client = next(c for c in seed["clients"] if c["type"] == "environment")
    client["redirect_uris"].append(redirect_uri)
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed), encoding="utf-8")
    return str(path)


def test_real_environment_mode_with_a_browser(tmp_path, workdir):
    from scalekit_local import LocalScalekit

    redirect_uri = free_loopback_uri()
    seed = seed_with_callback(tmp_path, redirect_uri)
    with LocalScalekit(seed_path=seed, data_dir=tmp_path / "data", auto_login="bob@acme.test") as env:
        argv = [sys.executable, str(SCRIPTS / "test_auth_flow.py"), "--redirect-uri", redirect_uri, "--timeout", "20"]
        proc = subprocess.Popen(argv, env=base_env(**env.env_vars()), cwd=workdir, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stderr_lines: list[str] = []
        url_seen = threading.Event()

        def read_stderr():
            for line in proc.stderr:
                stderr_lines.append(line)
                if line.startswith(f"{env.url}/oauth/authorize?"):
                    url_seen.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        assert url_seen.wait(20), "".join(stderr_lines)
        url = next(line.strip() for line in stderr_lines if line.startswith(env.url))
        # The browser: the local environment logs bob in and redirects to the script's listener.
        page = requests.get(url, verify=env.ca_bundle, timeout=10)
        assert page.status_code == 200 and "received the callback" in page.text
        stdout, _ = proc.communicate(timeout=30)
        reader.join(5)
        output = stdout + "".join(stderr_lines)
        assert proc.returncode == 0, output
        assert "PASS  login                             login in the browser" in stdout
        assert "bob@acme.test" in stdout and "logout url" in stdout
        # Nothing the environment handed out may appear: codes, refresh tokens, the secret.
        issued = [*env.store.codes, *env.store.refresh_tokens, env.client_secret]
        assert issued and not [s for s in issued if s in output], output
        assert "Traceback" not in output
