"""Scalekit down is not a bad token: while Scalekit's token endpoint or key set fails, every full-stack
template answers 503 and keeps the session; only a token that is really bad gets 401.

Each template runs once more here, against its own local environment (12-second access tokens), so
the faults injected at runtime (POST /_local/faults) touch no other test's server.
"""
from __future__ import annotations

import time

import pytest
import requests
from scalekit_checks import webapp

from .fullstack import TEMPLATES, App, target_for

TTL = 12
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not TEMPLATES, reason="no full-stack template yet")]


def fault(app: App, spec: dict | None) -> None:
    """Add one fault to the template's environment, or (None) remove them all."""
    url = app.target.env_url + "/_local/faults"
    response = (requests.post(url, json=spec, verify=app.target.verify, timeout=10) if spec else
                requests.delete(url, verify=app.target.verify, timeout=10))
    assert response.status_code < 300, response.text


@pytest.fixture(scope="module")
def expired_logins(template_server) -> dict[str, tuple[App, webapp.Login]]:
    """A login per template, all made together, then one wait until their access tokens expired."""
    logins = {}
    for name in TEMPLATES:
        server = template_server(name, access_token_ttl=TTL)
        app = App(name, server, target_for(server))
        logins[name] = (app, webapp.app_login(app.target))
        webapp.session_ok(app.target, logins[name][1])
    time.sleep(TTL + 1)  # the access tokens have expired: the next request must refresh
    return logins


@pytest.mark.parametrize("name", TEMPLATES)
def test_a_refresh_that_gets_a_5xx_answers_503_and_keeps_the_session(expired_logins, name):
    app, login = expired_logins[name]
    fault(app, {"target": "POST /oauth/token", "status": 503})
    try:
        during = login.browser.get(app.route("api"), "api route during the outage")
    finally:
        fault(app, None)
    assert during.status_code == 503, f"API while Scalekit's token endpoint answers 503: HTTP {during.status_code}"
    cleared = [c["name"] for c in login.browser.hops[-1].set_cookies if c["deleted"]]
    assert not cleared, f"the outage signed the user out (cleared {cleared})"
    after = login.browser.get(app.route("api"), "api route after the outage")
    assert after.status_code == 200, f"after the outage the session should work again: HTTP {after.status_code}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_keys_that_cannot_be_fetched_answer_503_not_401(template_server, name):
    # A process started while /keys fails: its key cache is empty.
    server = template_server(name, access_token_ttl=TTL, local_args=("--fault", "GET /keys=503"))
    app = App(name, server, target_for(server))
    bearer = {"Authorization": f"Bearer {webapp.own_tokens(app.target)['access_token']}"}
    during = webapp.Browser(app.target).get(app.route("api"), headers=bearer).status_code
    assert during == 503, f"a valid token while /keys answers 503 should get 503 (Scalekit down), not {during}"
    assert webapp.Browser(app.target).get(app.route("api"), headers={"Authorization": "Bearer a.b.c"}).status_code \
        in (401, 503), "a malformed token while /keys fails"
    fault(app, None)
    after = webapp.Browser(app.target).get(app.route("api"), headers=bearer).status_code
    assert after == 200, f"once /keys answers again, the same token should pass: HTTP {after}"
    assert webapp.Browser(app.target).get(app.route("api"), headers={"Authorization": "Bearer a.b.c"}).status_code \
        == 401, "a malformed token is a bad token (401) once the keys are known"
