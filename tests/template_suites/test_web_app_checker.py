"""scripts/test_web_app.py, the full-stack path's "Done when", passes on every full-stack template.

The templates run with the default 300-second access tokens, so the checker skips its refresh checks
(test_fullstack_templates.py runs those same checks with 20-second tokens). All checker runs go in
parallel; its failures against broken apps are in tests/scripts/test_web_app_script.py.
"""
from __future__ import annotations

import json
import sys

import httpx
import pytest

from . import launcher

sys.path.insert(0, str(launcher.REPO_ROOT / "tests" / "scripts"))
from script_helpers import assert_no_leaks, base_env, result, run_many  # noqa: E402

TEMPLATES = launcher.names("full-stack")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not TEMPLATES, reason="no full-stack template yet")]


def checker_args(server) -> tuple[str, ...]:
    routes = server.manifest["routes"]
    return (server.url, "--login-path", routes["login"], "--callback-path", routes["callback"], "--api-path",
            routes["api"], "--page-path", routes["page"], "--logout-path", routes["logout"], "--after-logout-path",
            routes.get("after_logout", "/"), "--require-bearer", "--json")


@pytest.fixture(scope="module")
def runs(template_server, tmp_path_factory):
    servers = {name: template_server(name) for name in TEMPLATES}
    cwd = tmp_path_factory.mktemp("checker")
    jobs = {name: ("test_web_app.py", checker_args(s), base_env(**s.local.env_vars()), cwd)
            for name, s in servers.items()}
    return servers, run_many(jobs, workers=len(jobs))


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_checker_passes_on_the_template(runs, name):
    servers, found = runs
    run = result(found, name)
    assert run.code == 0, run
    statuses = {c["name"]: c["status"] for c in run.doc["checks"]}
    for check in ("unauthenticated", "login redirect", "login", "cookie flags", "session id changes at login",
                  "logout", "state", "login csrf", "nonce", "code replay", "open redirects",
                  "forged session cookie", "forged bearer token"):
        assert statuses.get(check) == "pass", f"{check}: {statuses.get(check)}\n{run}"
    assert statuses["refresh"] == "skip"
    assert_no_leaks(run, servers[name].local.client_secret)


# ---- modular SSO (--sso-domain) and social login (--provider) ------------------------------------
SSO_TEMPLATES = launcher.names("modular-sso")
SSO_DOMAINS = {"acme.test": "conn_70000000000002001", "globex.test": "conn_70000000000002002"}
SSO_CHECKS = ("unauthenticated", "login redirect", "login", "cookie flags", "session id changes at login", "logout",
              "state", "login csrf", "nonce", "code replay", "open redirects", "forged session cookie")


def sso_checker_args(server, domain: str) -> tuple[str, ...]:
    """The modular-SSO "Done when" command's flags, from the template's manifest."""
    routes = server.manifest["routes"]
    return (server.url, "--sso-domain", domain, "--login-path", routes["sso_start"], "--login-page-path",
            routes["login"], "--callback-path", routes["callback"], "--api-path", routes["api"], "--page-path",
            routes["page"], "--logout-path", routes["logout"], "--logout-method", "POST", "--json")


@pytest.fixture(scope="module")
def sso_runs(template_server, tmp_path_factory):
    # The same servers as test_sso_templates.py (Acme's IdP hostile there), so a run starts them once.
    servers = {name: template_server(name, local_args=("--hostile-idp", SSO_DOMAINS["acme.test"]))
               for name in SSO_TEMPLATES}
    cwd = tmp_path_factory.mktemp("sso-checker")
    jobs = {(name, domain): ("test_web_app.py", sso_checker_args(s, domain), base_env(**s.local.env_vars()), cwd)
            for name, s in servers.items() for domain in SSO_DOMAINS}
    return servers, run_many(jobs, workers=3)


@pytest.mark.skipif(not SSO_TEMPLATES, reason="no modular-SSO template yet")
@pytest.mark.parametrize("domain", sorted(SSO_DOMAINS))
@pytest.mark.parametrize("name", SSO_TEMPLATES)
def test_the_sso_checker_passes_on_the_sso_template(sso_runs, name, domain):
    servers, found = sso_runs
    run = result(found, (name, domain))
    assert run.code == 0, [(c["name"], c.get("message")) for c in run.doc["checks"] if c["status"] == "fail"]
    checks = {c["name"]: c for c in run.doc["checks"]}
    for check in SSO_CHECKS:
        assert checks.get(check, {}).get("status") == "pass", f"{check}: {checks.get(check)}\n{run}"
    assert checks["forged bearer token"]["status"] == checks["refresh"]["status"] == "skip"
    assert_no_leaks(run, servers[name].local.client_secret)
    # The user the checker signed in exists at Scalekit as a member of that domain's organization, and
    # the local environment saw a login through that domain's connection.
    with httpx.Client(base_url=servers[name].local.url, verify=servers[name].local.ca_bundle, timeout=20) as env:
        events = env.get("/_local/events").json()["events"]
    assert any(f"sso-user@{domain}" in json.dumps(e) for e in events), "the checker's SSO user was never created"


PROVIDER_TEMPLATE = "fullstack-fastapi"


@pytest.mark.skipif(PROVIDER_TEMPLATE not in TEMPLATES, reason="needs the fullstack-fastapi template")
def test_the_checker_logs_in_with_a_social_provider(template_server, tmp_path):
    server = template_server(PROVIDER_TEMPLATE)
    email = "social-check@gmail.test"  # unknown to the seed: the google provider signs it up
    found = run_many({"google": ("test_web_app.py", (*checker_args(server)[:-2], "--provider", "google", "--email",
                                                     email, "--json"), base_env(**server.local.env_vars()),
                                 tmp_path)}, workers=1)
    run = result(found, "google")
    assert run.code == 0, run
    assert {c["name"]: c["status"] for c in run.doc["checks"]}["login"] == "pass"
    with httpx.Client(base_url=server.local.url, verify=server.local.ca_bundle, timeout=20) as env:
        signups = [e for e in env.get("/_local/events").json()["events"] if e["type"] == "user.signup"]
    assert any(email in json.dumps(e) for e in signups), "no sign-up through the google provider"
