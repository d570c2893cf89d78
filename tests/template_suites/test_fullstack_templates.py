"""One behaviour-and-attack suite for every full-stack template (tests/template_suites/README.md, "Full-stack suite").

Each template runs once, against its own local Scalekit environment with 20-second access tokens and
the custom claim `plan`, and is driven from outside like a browser and like an attacker: real logins
through the environment's login pages, then the checks of scripts/scalekit_checks/webapp.py (the same
ones scripts/test_web_app.py runs on a user's app) and the template-only ones below: social and
enterprise login, the permission guard, organization-scoped data, custom claims, Secure cookies on
https, refresh across processes.
"""
from __future__ import annotations

import pytest
from scalekit_checks import webapp
from scalekit_checks.report import CheckFailed

from . import launcher
from .fullstack import TEMPLATES, TTL, App

ALICE_ID, ACME, GLOBEX = "usr_70000000000003001", "org_70000000000001001", "org_70000000000001002"
BOB = ("bob@acme.test", "bob-password")  # an Acme member: no organization:write
CAROL = ("carol@globex.test", "carol-password")  # a Globex admin

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not TEMPLATES, reason="no full-stack template yet")]


def run(check, *args):
    """What a webapp check returns, or the test fails with what it found."""
    try:
        return check(*args)
    except CheckFailed as exc:
        pytest.fail(exc.message, pytrace=False)


@pytest.fixture(params=TEMPLATES, scope="module")
def app(request, start_app) -> App:
    return start_app(request.param)


@pytest.fixture(scope="module")
def login(app) -> webapp.Login:
    """One password login per template, for the checks that only read it."""
    _, found = run(webapp.check_login, app.target)
    return found


def signed_in(app: App, email: str, password: str | None = None, query_string: str = "") -> webapp.Login:
    found = run(webapp.app_login, app.target, None, query_string, email, password)
    run(webapp.session_ok, app.target, found)
    return found


def get(found: webapp.Login, url: str):
    """(status, JSON body or None, text) of a request in that login's browser."""
    response = found.browser.get(url, "request")
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return response.status_code, response.json() if is_json else None, response.text


# ---- behaviour ----------------------------------------------------------------------------------------
def test_without_a_session_pages_redirect_to_login_and_apis_answer_401(app):
    run(webapp.check_unauthenticated, app.target)


def test_login_redirect_carries_state_nonce_pkce_and_redirect_uri(app):
    run(webapp.check_login_redirect, app.target)


def test_callback_sets_a_session_for_the_user(app, login):
    status, body, _ = get(login, app.route("api"))
    assert status == 200 and body, f"API after login: HTTP {status}"
    assert (body.get("sub"), body.get("oid")) == (ALICE_ID, ACME), body


def test_cookies_are_httponly_samesite_lax_and_not_secure_on_plain_http(app, login):
    run(webapp.check_cookie_flags, app.target, login)


def test_cookies_are_secure_when_the_app_url_is_https(app, tmp_path):
    """A second copy of the template whose APP_URL is https (as behind a TLS proxy in production)."""
    https = launcher.start(app.server.template, app.server.local, launcher.free_port(), tmp_path,
                           {"APP_URL": "https://app.example.test"})
    try:
        response = webapp.Browser(app.target).get(f"{https.url}{app.server.manifest['routes']['login']}")
    finally:
        https.stop()
    cookies = [webapp.parse_set_cookie(h) for h in response.raw.headers.getlist("set-cookie")]
    assert response.status_code in webapp.REDIRECTS and cookies, "the login route set no cookie"
    insecure = [c["name"] for c in cookies if "secure" not in c["attributes"]]
    assert not insecure, f"with APP_URL=https://app.example.test these cookies lack Secure: {insecure}"
    redirect_uri = webapp.query(response.headers["location"])["redirect_uri"]
    assert redirect_uri == "https://app.example.test" + app.server.manifest["routes"]["callback"]


def test_session_id_changes_at_login(app, login):
    run(webapp.check_session_id_changes, app.target, login)


def test_logout_ends_the_app_and_scalekit_sessions(app):
    run(webapp.check_logout, app.target, signed_in(app, *app.target.user))


# ---- social and enterprise login, guards, organizations, claims ---------------------------------------
def test_social_login(app):
    found = signed_in(app, "dev.social@example.test", query_string="?provider=github")
    assert "/ui/social" in " ".join(h.url for h in found.browser.hops), "the login did not go through GitHub"
    status, body, _ = get(found, app.route("api"))
    assert status == 200 and body["sub"].startswith("usr_") and body["sub"] != ALICE_ID, body


@pytest.mark.parametrize("route, email, organization", [
    ("?organization_id=" + ACME, "alice@acme.test", ACME),
    ("?domain=globex.test", "carol@globex.test", GLOBEX),
], ids=["by-organization", "by-email-domain"])
def test_enterprise_login(app, route, email, organization):
    found = signed_in(app, email, query_string=route)
    assert "/ui/idp" in " ".join(h.url for h in found.browser.hops), "the login did not go through the SSO page"
    status, body, _ = get(found, app.route("api"))
    assert status == 200 and body["oid"] == organization, body


def test_api_routes_see_one_user_shape_for_a_session_and_a_bearer_token(app, login):
    """Code copied from an API route must work for both callers: a bearer token's user has the same
    fields as a session's (email and name empty: it has no ID token), never a KeyError or a 500."""
    status, by_session, _ = get(login, app.route("api"))
    assert status == 200 and "alice@acme.test" in str(by_session), (status, by_session)
    token = run(webapp.own_tokens, app.target)["access_token"]
    response = webapp.Browser(app.target).get(app.route("api"), "api route", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, f"a valid bearer token: HTTP {response.status_code} {response.text[:200]}"
    by_bearer = response.json()
    assert set(by_bearer) == set(by_session), f"session: {sorted(by_session)}; bearer: {sorted(by_bearer)}"
    assert by_bearer["sub"] == by_session["sub"] == ALICE_ID


def test_permission_guard_reads_the_access_token(app, login):
    assert get(login, app.route("admin"))[0] == 200, "an Acme admin (organization:write) is refused"
    assert get(signed_in(app, *BOB), app.route("admin"))[0] == 403, "an Acme member gets the admin route"
    assert webapp.Browser(app.target).get(app.route("admin")).status_code == 401


def test_organization_data_is_scoped_to_the_session(app, login):
    status, body, _ = get(login, app.route("org_data", org_id=ACME))
    assert status == 200 and ACME in str(body), (status, body)
    assert get(login, app.route("org_data", org_id=GLOBEX))[0] == 403, "Alice (Acme) reads Globex's data"
    carol = signed_in(app, *CAROL)
    assert get(carol, app.route("org_data", org_id=GLOBEX))[0] == 200
    assert get(carol, app.route("org_data", org_id=ACME))[0] == 403, "Carol (Globex) reads Acme's data"
    assert webapp.Browser(app.target).get(app.route("org_data", org_id=ACME)).status_code == 401


def test_profile_shows_id_token_profile_and_custom_claims(app, login):
    status, _, text = get(login, app.route("profile"))
    assert status == 200
    for shown in ("alice@acme.test", "Alice", ACME, "admin", "plan", "enterprise"):
        assert shown in text, f"the profile page does not show {shown!r}"
    page = webapp.Browser(app.target).get(app.route("profile"))
    assert webapp.redirects_to_login(app.target, page), "the profile page is not protected"


# ---- attacks ---------------------------------------------------------------------------------------------
def test_missing_or_mismatched_state_is_refused(app):
    run(webapp.check_state, app.target)


def test_login_csrf_with_another_browsers_state_and_code_is_refused(app):
    run(webapp.check_login_csrf, app.target)


def test_a_code_whose_id_token_has_another_nonce_is_refused(app):
    run(webapp.check_leaked_state, app.target)


def test_code_replay_is_refused(app):
    run(webapp.check_code_replay, app.target)


def test_no_open_redirect_at_login_or_logout(app):
    run(webapp.check_open_redirects, app.target)


def test_forged_or_tampered_session_cookies_are_refused(app, login):
    run(webapp.check_forged_cookie, app.target, login)


def test_bearer_tokens_valid_accepted_forged_refused(app):
    run(webapp.check_forged_bearer, app.target, True)


# ---- refresh: every template's sessions expire together, then these run -------------------------------
@pytest.fixture(scope="session")
def expired(start_app, tmp_path_factory):
    """Per template: sessions logged in together, plus a second instance of the template that shares
    the first one's secrets and environment (another process behind the same site). One wait."""
    prepared, twins = {}, []
    for name in TEMPLATES:
        try:
            started = start_app(name)
            sessions = webapp.ExpiringSessions(started.target, TTL)
            sessions.cross_process = signed_in(started, *started.target.user)
            shared = {k: started.server.env[k] for k in started.server.manifest.get("secrets", [])}
            twin = launcher.start(started.server.template, started.server.local, launcher.free_port(),
                                  tmp_path_factory.mktemp("twin"), {**shared, "APP_URL": started.server.url})
            twins.append(twin)
            sessions.twin = twin
            prepared[name] = sessions
        except (CheckFailed, RuntimeError) as exc:
            prepared[name] = exc
    for sessions in prepared.values():
        if not isinstance(sessions, Exception):
            sessions.wait()
    yield prepared
    for twin in twins:
        twin.stop()


@pytest.fixture
def sessions(app, expired) -> webapp.ExpiringSessions:
    found = expired[app.name]
    if isinstance(found, Exception):
        pytest.fail(f"preparing expired sessions failed: {getattr(found, 'message', found)}", pytrace=False)
    return found


def test_the_first_request_after_expiry_refreshes(app, sessions):
    run(webapp.check_refresh, app.target, sessions)


def test_ten_concurrent_requests_at_expiry_all_succeed_with_one_refresh(app, sessions):
    run(webapp.check_concurrent_refresh, app.target, sessions)


def test_after_logout_the_old_refresh_token_no_longer_works(app, sessions):
    run(webapp.check_refresh_after_logout, app.target, sessions)


def test_two_processes_refreshing_one_session_at_once(app, sessions):
    """What every README states: each process refreshes once; Scalekit accepts the first use of the
    refresh token and ends the session on the second, so one process's requests succeed and the
    other's answer 401 (never 5xx). One process per session, or a shared store, avoids it."""
    cookies = sessions.cross_process.browser.cookies()
    urls = [app.route("api"), f"{launcher.app_url(sessions.twin.port)}{app.server.manifest['routes']['api']}"]
    reuse_before = webapp.env_stats(app.target).get("refresh_reuse_detected", 0)

    def call(index):
        browser = webapp.Browser(app.target)
        browser.set_cookies(cookies)
        return index % 2, browser.get(urls[index % 2], "api").status_code

    results = webapp.parallel(10, call)
    by_instance = {i: sorted(status for j, status in results if j == i) for i in (0, 1)}
    assert all(status in (200, 401) for _, status in results), by_instance
    winners = [i for i, statuses in by_instance.items() if set(statuses) == {200}]
    losers = [i for i, statuses in by_instance.items() if set(statuses) == {401}]
    assert len(winners) == 1 and len(losers) == 1, f"expected one instance all 200, the other all 401: {by_instance}"
    assert webapp.env_stats(app.target).get("refresh_reuse_detected", 0) == reuse_before + 1
