"""scripts/test_web_app.py, the full-stack path's "Done when", passes on every full-stack template.

The templates run with the default 300-second access tokens, so the checker skips its refresh checks
(test_fullstack_templates.py runs those same checks with 20-second tokens). All checker runs go in
parallel; its failures against broken apps are in tests/scripts/test_web_app_script.py.
"""
from __future__ import annotations

import sys

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
