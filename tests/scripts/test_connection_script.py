"""scripts/test_connection.py against the local Scalekit environment (happy paths) and against
broken configurations and misbehaving servers (the fault matrix). Server faults (500, invalid JSON,
wrong issuer, key without kid, slow answers) come from the local environment's own fault injection
(`--fault`, one instance per fault); faulty_servers.py only stands in for what it cannot do (an
untrusted certificate, a port that never answers). All runs start together in parallel; each test
then checks one of them."""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from faulty_servers import closed_port, silent_port, untrusted_tls
from script_helpers import assert_failed, assert_no_leaks, base_env, result, run_many

TRUST_VARS = ("REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "SSL_CERT_FILE", "CURL_CA_BUNDLE",
              "NODE_EXTRA_CA_CERTS")
SOME_SECRET = "test_5xKq8vRz2NwT7bLm4PcY9hJd3FgS6aUeQ"


@dataclass
class Case:
    args: tuple
    code: int
    fragments: tuple = ()
    max_check_ms: float | None = None  # how long the failing check may take (start-up excluded)


# Each case: arguments, expected exit code and the words its one-line error must contain.
# Variables come from `variables_for` below.
CASES = {
    "local": Case(("--local", "--json"), 0),
    "local_text": Case(("--local",), 0),
    "shared_env": Case(("--json",), 0),
    "trailing_slash": Case(("--json",), 0),
    "missing_variables": Case(("--json",), 2, ("SCALEKIT_ENVIRONMENT_URL", "not set")),
    "malformed_url": Case((), 2, ("has no scheme",)),
    "http_remote_host": Case((), 2, ("use https://",)),
    "wrong_secret": Case(("--json",), 3, ("invalid_client",)),
    "unknown_client": Case(("--json",), 3, ("invalid_client",)),
    "nothing_listening": Case(("--json",), 4, ("connection refused",)),
    "dns_failure": Case(("--timeout", "3"), 4, ("DNS",)),
    "untrusted_tls": Case(("--json",), 4, ("not trusted",)),
    "grpc_trust_missing": Case(("--json",), 4, ("grpc tls", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH")),
    "slow_answer": Case(("--timeout", "1", "--json"), 4, ("within 1 s", "timeout"), max_check_ms=1000 + 1000),
    "never_answers": Case(("--timeout", "1", "--json"), 4, ("within 1 s", "timeout"), max_check_ms=1000 + 1000),
    "http_500": Case(("--json",), 5, ("HTTP 500",)),
    "token_500": Case(("--json",), 5, ("HTTP 500",)),
    "invalid_json": Case(("--json",), 5, ("invalid JSON",)),
    "issuer_mismatch": Case(("--json",), 5, ("issuer is 'https://other-env.scalekit.com'",)),
    "jwks_without_kid": Case(("--json",), 5, ("no 'kid'",)),
}


# Cases served by a local environment started with these --fault specs (every request faulted).
FAULTS = {
    "http_500": ("GET /.well-known/openid-configuration=500",),
    "token_500": ("POST /oauth/token=500",),
    "invalid_json": ("GET /.well-known/openid-configuration=invalid_json",),
    "issuer_mismatch": ("GET /.well-known/openid-configuration=issuer:https://other-env.scalekit.com",),
    "jwks_without_kid": ("GET /keys=drop_kid",),
    "slow_answer": ("GET /.well-known/openid-configuration=delay:5s",),
}


def variables_for(case: str, local: dict, urls: dict) -> dict:
    """SCALEKIT_* and trust variables for one case; `local` is the local environment's set."""
    creds = {"SCALEKIT_CLIENT_ID": "skc_70000000000000001", "SCALEKIT_CLIENT_SECRET": SOME_SECRET}
    if case in ("local", "local_text", "missing_variables"):
        return {}
    if case == "shared_env":
        return local
    if case == "trailing_slash":
        return local | {"SCALEKIT_ENVIRONMENT_URL": local["SCALEKIT_ENVIRONMENT_URL"] + "/"}
    if case == "malformed_url":
        return creds | {"SCALEKIT_ENVIRONMENT_URL": "127.0.0.1:8443"}
    if case == "http_remote_host":
        return creds | {"SCALEKIT_ENVIRONMENT_URL": "http://acme-dev.scalekit.dev"}
    if case == "wrong_secret":
        return local | {"SCALEKIT_CLIENT_SECRET": SOME_SECRET}
    if case == "unknown_client":
        return local | {"SCALEKIT_CLIENT_ID": "skc_99999999999999999"}
    if case == "grpc_trust_missing":  # requests trusts the local CA, grpc-core does not
        return {k: v for k, v in local.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}
    if case == "dns_failure":
        return creds | {"SCALEKIT_ENVIRONMENT_URL": "https://scalekit-auth-test.invalid"}
    if case in FAULTS:  # a faulted local environment: its own variables, CA trust included
        return urls[case]
    return creds | {"SCALEKIT_ENVIRONMENT_URL": urls[case]}


@pytest.fixture(scope="module")
def results(local_scalekit, local_scalekit_factory, tmp_path_factory):
    local = local_scalekit.env_vars()
    cwd = tmp_path_factory.mktemp("test-connection")
    with ExitStack() as stack:
        urls: dict = {name: local_scalekit_factory(faults=specs).env_vars() for name, specs in FAULTS.items()}
        urls["untrusted_tls"] = stack.enter_context(untrusted_tls())
        urls["never_answers"] = stack.enter_context(silent_port())[1]
        urls["nothing_listening"] = f"https://127.0.0.1:{closed_port()}"
        jobs = {}
        for name, case in CASES.items():
            # No trust variables unless the case sets them: the machine's own exports would
            # otherwise decide (they point at the system bundle).
            env = {k: v for k, v in base_env().items() if k not in TRUST_VARS}
            env.update(variables_for(name, local, urls))
            jobs[name] = ("test_connection.py", case.args, env, cwd)
        yield run_many(jobs), local


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.code == 0])
def test_happy_path(results, name):
    runs, local = results
    run = result(runs, name)
    assert run.code == 0, run
    assert_no_leaks(run, local["SCALEKIT_CLIENT_SECRET"])
    if run.doc:
        statuses = {c["name"]: c["status"] for c in run.doc["checks"]}
        for step in ("discovery", "jwks", "client credentials", "grpc tls", "sdk client", "token validation",
                     "management api", "clock skew", "latency"):
            assert statuses[step] == "pass", run
        latency = next(c for c in run.doc["checks"] if c["name"] == "latency")
        assert set(latency["data"]["round_trips_ms"]) == {"discovery", "jwks", "client credentials", "grpc"}
        assert run.doc["environment_url"].startswith("https://127.0.0.1:")
    else:
        assert "management api" in run.stdout and run.stdout.rstrip().splitlines()[-1].startswith("OK:"), run


def test_local_flag_reports_its_own_environment(results):
    run = result(results[0], "local")
    assert run.doc["local"] is True
    assert run.doc["checks"][0]["name"] == "local environment"


def test_trailing_slash_is_normalised_and_still_connects(results):
    run = result(results[0], "trailing_slash")
    url_check = next(c for c in run.doc["checks"] if c["name"] == "SCALEKIT_ENVIRONMENT_URL")
    assert url_check["status"] == "warn", run
    assert not run.doc["environment_url"].endswith("/")


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.code != 0])
def test_fault_gives_its_exit_code_and_one_line(results, name):
    runs, local = results
    case = CASES[name]
    run = result(runs, name)
    assert_failed(run, case.code, *case.fragments)
    assert_no_leaks(run, local["SCALEKIT_CLIENT_SECRET"], SOME_SECRET)
    if case.max_check_ms is not None:  # the server would answer after 5 s, or never
        assert next(c for c in run.doc["checks"] if c["status"] == "fail")["duration_ms"] < case.max_check_ms, run
    if run.doc:
        assert run.doc["ok"] is False and run.doc["error"]["message"] in run.error_lines[0]
