"""The Python SDK 2.21's own framework integrations (`scalekit.frameworks.fastapi|django|flask`
ScalekitAuth, built on `scalekit.middleware`) under the full-stack checks: the verdict, pinned.

Each app in sdk_apps/ is the integration wired as its docstring shows. VERDICT says, per check,
whether it passes and, if not, what the check finds; a change in the SDK that fixes (or breaks)
something turns a test red. The templates use the parts that pass (session_crypto, csrf_state) and
replace the rest (reference/sdk-gotchas.md, "Python: the framework integrations").

The integrations keep the access token, the ID token and the access token's claims in one cookie,
which outgrows the 3800-byte limit they enforce for an ordinary user (test_an_ordinary_login_
overflows_the_cookie). The other checks therefore log in as users without an organization, whose
tokens are small enough.
"""
from __future__ import annotations

import pytest
import yaml
from scalekit_checks import webapp
from scalekit_checks.report import CheckFailed
from scalekit_local.seed import DEFAULT_SEED_PATH

from . import launcher

APPS = ("fastapi", "django", "flask")
TTL = 20
# The profile, which the SDK's docstring says to add as custom claims (access tokens carry no email
# or name), and three organization claims: an Acme user's cookie (3996 bytes) outgrows the
# integration's 3800-byte limit; users without an organization stay under it (3264 bytes).
CUSTOM_CLAIMS = tuple(arg for claim in ("email=user.email", "name=user.name", "given_name=user.given_name",
                                        "family_name=user.family_name", "plan=organization.metadata.plan",
                                        "org_name=organization.name", "org_external_id=organization.external_id")
                      for arg in ("--token-claim", claim))
SOLO, MALLORY = ("solo@example.test", "solo-password"), ("mallory@example.test", "mallory-password")

# check -> None (passes) or a fragment of what the check finds
VERDICT = {
    "unauthenticated": "without a session: HTTP 302, expected 401",  # requires_auth/login_required never answer 401
    "login redirect": "no PKCE",                                 # and no nonce: the login view sets state only
    "login": None,
    "cookie flags": None,
    "session id changes at login": None,
    "logout": None,
    "state": None,
    "login csrf": None,
    "nonce": "signed the browser in",                            # a leaked state lets an attacker log the victim in
    "code replay": None,
    "open redirects": None,
    "forged session cookie": None,
    "bearer tokens": "not 200",                                  # no bearer support for API clients
    "refresh": None,
    "concurrent refresh": None,
    "refresh token after logout": None,
}
CHECKS = {
    "unauthenticated": lambda t, s: webapp.check_unauthenticated(t),
    "login redirect": lambda t, s: webapp.check_login_redirect(t),
    "login": lambda t, s: webapp.check_login(t)[0],
    "cookie flags": lambda t, s: webapp.check_cookie_flags(t, webapp.check_login(t)[1]),
    "session id changes at login": lambda t, s: webapp.check_session_id_changes(t, webapp.check_login(t)[1]),
    "logout": lambda t, s: webapp.check_logout(t, webapp.app_login(t)),
    "state": lambda t, s: webapp.check_state(t),
    "login csrf": lambda t, s: webapp.check_login_csrf(t),
    "nonce": lambda t, s: webapp.check_leaked_state(t),
    "code replay": lambda t, s: webapp.check_code_replay(t),
    "open redirects": lambda t, s: webapp.check_open_redirects(t),
    "forged session cookie": lambda t, s: webapp.check_forged_cookie(t, webapp.app_login(t)),
    "bearer tokens": lambda t, s: webapp.check_forged_bearer(t, True),
    "refresh": lambda t, s: webapp.check_refresh(t, s),
    "concurrent refresh": lambda t, s: webapp.check_concurrent_refresh(t, s),
    "refresh token after logout": lambda t, s: webapp.check_refresh_after_logout(t, s),
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def apps(local_scalekit_factory, tmp_path_factory):
    """Each integration started against its own environment; sessions for the refresh checks
    logged in on all three, then one wait until their access tokens expired."""
    seed = yaml.safe_load(DEFAULT_SEED_PATH.read_text(encoding="utf-8"))
    for number, (email, password) in enumerate((SOLO, MALLORY), start=1):
        seed["users"].append({"id": f"usr_7000000000000399{number}", "email": email, "password": password,
                              "given_name": email.split("@")[0].title(), "memberships": []})
    seed_path = tmp_path_factory.mktemp("sdk-seed") / "seed.yaml"
    seed_path.write_text(yaml.safe_dump(seed), encoding="utf-8")
    logs = tmp_path_factory.mktemp("sdk-apps")
    started, found = [], {}
    try:
        for name in APPS:
            app = launcher.load(launcher.REPO_ROOT / "tests" / "template_suites" / "sdk_apps" / f"sdk-{name}")
            launcher.build(app, logs)
            port = launcher.free_port()
            local = local_scalekit_factory(fresh=True, seed=seed_path, access_token_ttl=TTL,
                                           extra_args=(*launcher.registrations(app, port), *CUSTOM_CLAIMS))
            server = launcher.start(app, local, port, logs)
            started.append(server)
            target = webapp.Target(server.url, app.manifest["routes"], local.url, local.client_id,
                                   local.client_secret, verify=local.ca_bundle, user=SOLO, attacker=MALLORY)
            found[name] = (server, target, webapp.ExpiringSessions(target, TTL))
        for _, _, sessions in found.values():
            sessions.wait()
        yield found
    finally:
        for server in started:
            server.stop()


@pytest.mark.parametrize("check", list(VERDICT))
@pytest.mark.parametrize("name", APPS)
def test_verdict(apps, name, check):
    _, target, sessions = apps[name]
    expected = VERDICT[check]
    try:
        message = CHECKS[check](target, sessions)
    except CheckFailed as exc:
        assert expected is not None, f"ScalekitAuth ({name}) now fails {check!r}: {exc.message}"
        assert expected in exc.message, f"{check!r} fails differently: {exc.message}"
        return
    assert expected is None, f"ScalekitAuth ({name}) now passes {check!r} ({message}); update VERDICT and sdk-gotchas.md"


@pytest.mark.parametrize("name", APPS)
def test_an_ordinary_login_overflows_the_cookie_and_loops(apps, name):
    """Alice (an Acme admin) with her profile and organization as claims: the integration's cookie
    holds the access token, the ID token and the claims, over its 3800-byte limit. The callback stores nothing and
    redirects to /login, which Scalekit's live session answers with a new code at once: the browser
    loops between the app and Scalekit until it gives up (ERR_TOO_MANY_REDIRECTS)."""
    server, target, _ = apps[name]
    alice = webapp.Target(target.url, target.routes, target.env_url, target.client_id, target.client_secret,
                          verify=target.verify)
    with pytest.raises(CheckFailed, match="more than 12 redirects"):
        webapp.app_login(alice, email="alice@acme.test", password="alice-password")
    assert "exceeds the browser cookie size limit" in server.log_text()
