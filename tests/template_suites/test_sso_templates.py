"""Modular SSO: one behaviour-and-attack suite for every `modular-sso` template (templates/sso-*).

Each template is an app with its own users, passwords and sessions in SQLite that adds enterprise
SSO through Scalekit. The suite drives it from outside, as a browser and as an attacker would, with
the local Scalekit environment playing Scalekit and the customers' identity providers:

- Acme's SAML connection is hostile (`--hostile-idp`): its IdP page accepts any email, as an IdP
  whose IT admin can create users with any address would.
- The template's webhook URL is registered (`routes.webhook`, launcher.registrations); the
  signing secret reaches the app as SCALEKIT_WEBHOOK_SECRET, and the suite signs its own forged,
  stale and replayed deliveries with it (or with a wrong one).

Manifest keys used (template.json `routes`): login (GET: the email-first page; also the IdP-initiated
login URL), discover (form POST of `email`: the password step, or a redirect to SSO), password_login,
sso_start ({email}),
sso_org_start ({org}), callback, logout, api, page, org_data ({org}), members ({org}), admin,
webhook; and the top-level demo_password_user ("email:password", a domain without SSO).

Seeded facts (scripts/scalekit_local/default_seed.yaml): Acme (org_...1001, external id acme) has the
SAML connection for acme.test, Globex (org_...1002, globex) the OIDC connection for globex.test;
Acme's directory dir_...4001 holds dana@acme.test. Each template seeds its own database with
alice@acme.test and carol@globex.test (password users who predate SSO, admins of their
organizations) and the demo password user of Initech, a customer without SSO.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from local_env.helpers import sdk_client, trusting

from . import launcher

pytestmark = pytest.mark.slow

NAMES = launcher.names("modular-sso")
ACME_ORG, GLOBEX_ORG = "org_70000000000001001", "org_70000000000001002"
ACME_SAML, GLOBEX_OIDC = "conn_70000000000002001", "conn_70000000000002002"
ACME_DIRECTORY, DANA_DIRECTORY_USER = "dir_70000000000004001", "diruser_70000000000006003"
ALICE = ("alice@acme.test", "alice-app-password")
CAROL = ("carol@globex.test", "carol-app-password")
REDIRECTS = (301, 302, 303, 307, 308)
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")


@pytest.fixture(scope="module", params=NAMES)
def server(request, template_server):
    return template_server(request.param, local_args=("--hostile-idp", ACME_SAML))


def route(server, name: str, **values: str) -> str:
    path = server.manifest["routes"][name]
    for key, value in values.items():
        path = path.replace("{" + key + "}", quote(value, safe="@"))
    return path


class Agent:
    """One user's browser without the browser: a cookie jar for the app and one for Scalekit."""

    def __init__(self, server):
        self.server = server
        self.app = httpx.Client(base_url=server.url, timeout=20)
        self.scalekit = httpx.Client(verify=server.local.ca_bundle, timeout=20)

    def close(self):
        self.app.close()
        self.scalekit.close()

    def me(self) -> httpx.Response:
        return self.app.get(route(self.server, "api"))

    def password_login(self, email: str, password: str) -> httpx.Response:
        return self.app.post(route(self.server, "password_login"), data={"email": email, "password": password})

    def within_app(self, resp: httpx.Response) -> httpx.Response:
        """Follow redirects while they stay on the app (a page may hand over to a route handler)."""
        for _ in range(5):
            location = resp.headers.get("location", "")
            if resp.status_code not in REDIRECTS or not location.startswith(("/", self.server.url)):
                return resp
            resp = self.app.get(location)
        return resp

    def to_identity_provider(self, start: str) -> tuple[str, dict]:
        """Follow the app's SSO start to the IdP page: (its URL, its query)."""
        resp = self.within_app(self.app.get(start))
        assert resp.status_code in (302, 303, 307), (resp.status_code, resp.text[:500])
        authorize = resp.headers["location"]
        assert authorize.startswith(self.server.local.url + "/oauth/authorize?"), authorize
        resp = self.scalekit.get(authorize)
        assert resp.status_code == 302, resp.text[:500]
        idp = self.server.local.url + resp.headers["location"]
        assert "/ui/idp?" in idp, idp
        return idp, query_of(idp)

    def at_identity_provider(self, idp_query: dict, email: str) -> str:
        """Sign in at the simulated IdP as `email`; return the app callback URL Scalekit redirects to."""
        resp = self.scalekit.post(self.server.local.url + "/ui/idp", data={
            "r": idp_query["r"], "connection_id": idp_query["connection_id"], "email": email, "action": "approve"})
        assert resp.status_code == 302, (resp.status_code, resp.text[:800])
        callback = resp.headers["location"]
        assert callback.startswith(self.server.url + route(self.server, "callback") + "?"), callback
        return callback

    def sso_login(self, email: str, *, asserted: str | None = None, start: str | None = None) -> httpx.Response:
        """A whole SSO login; returns the app's answer to the callback."""
        _, idp = self.to_identity_provider(start or route(self.server, "sso_start", email=email))
        return self.app.get(self.at_identity_provider(idp, asserted or email))


@pytest.fixture
def agent(server):
    agents = []

    def make() -> Agent:
        agents.append(Agent(server))
        return agents[-1]

    yield make
    for a in agents:
        a.close()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def signed_in(resp: httpx.Response) -> bool:
    return resp.status_code in REDIRECTS and "session" in resp.headers.get("set-cookie", "") and \
        not re.search(r"session=(\"\")?;", resp.headers.get("set-cookie", ""))


def local_admin(server) -> httpx.Client:
    return httpx.Client(base_url=server.local.url, verify=server.local.ca_bundle, timeout=20)


# ---- behaviour ------------------------------------------------------------------------------------
def test_password_users_keep_working(server, agent):
    email, password = server.manifest["demo_password_user"].split(":", 1)
    user = agent()
    assert user.me().status_code == 401
    page = user.app.get(route(server, "page"))
    assert page.status_code in REDIRECTS and route(server, "login") in page.headers["location"]
    # The email-first form asks this domain for a password, not for SSO.
    step = user.within_app(user.app.post(route(server, "discover"), data={"email": email}))
    assert step.status_code == 200 and 'name="password"' in step.text.replace("'", '"'), step.text[:500]
    wrong = user.password_login(email, password + "-wrong")
    assert wrong.status_code == 401 and not signed_in(wrong)
    assert user.me().status_code == 401
    assert signed_in(user.password_login(email, password))
    me = user.me().json()
    assert me["email"] == email and me["organization"] == "initech"
    assert user.app.get(route(server, "page")).status_code == 200
    assert user.app.post(route(server, "logout")).status_code in REDIRECTS
    assert user.me().status_code == 401


@pytest.mark.parametrize("email, connection, kind", [("bob@acme.test", ACME_SAML, "SAML"),
                                                      ("henry@globex.test", GLOBEX_OIDC, "OIDC")])
def test_sso_domain_is_routed_to_its_connection(server, agent, email, connection, kind):
    user = agent()
    step = user.app.post(route(server, "discover"), data={"email": email})
    assert step.status_code in (302, 303), step.text[:500]
    page_url, idp = user.to_identity_provider(step.headers["location"])
    assert idp["connection_id"] == connection
    assert f'id="connection-type">{kind}<' in user.scalekit.get(page_url).text


def test_sso_by_organization(server, agent):
    _, idp = agent().to_identity_provider(route(server, "sso_org_start", org="globex"))
    assert idp["connection_id"] == GLOBEX_OIDC


def members(server, admin: Agent, org: str) -> list[dict]:
    resp = admin.app.get(route(server, "members", org=org))
    assert resp.status_code == 200, resp.text
    return resp.json()["users"]


def test_jit_provisioning_creates_one_user_then_links(server, agent):
    admin = agent()
    assert signed_in(admin.password_login(*ALICE))
    before = members(server, admin, "acme")
    first = agent()
    assert signed_in(first.sso_login("bob@acme.test"))
    me = first.me().json()
    assert me["email"] == "bob@acme.test" and me["organization"] == "acme" and me["role"] == "member"
    second = agent()
    assert signed_in(second.sso_login("bob@acme.test"))
    assert second.me().json()["id"] == me["id"]
    after = members(server, admin, "acme")
    assert len(after) == len(before) + 1
    assert [u["email"] for u in after].count("bob@acme.test") == 1


def test_sso_links_an_existing_password_account_of_a_verified_domain(server, agent):
    by_password = agent()
    assert signed_in(by_password.password_login(*ALICE))
    alice_id = by_password.me().json()["id"]
    count = len(members(server, by_password, "acme"))
    by_sso = agent()
    assert signed_in(by_sso.sso_login(ALICE[0]))
    assert by_sso.me().json()["id"] == alice_id
    assert len(members(server, by_password, "acme")) == count
    # The password still works after the account got an SSO identity.
    assert signed_in(agent().password_login(*ALICE))


def test_the_app_issues_its_own_session_and_scalekit_tokens_stay_on_the_server(server, agent):
    user = agent()
    callback = user.sso_login(CAROL[0])
    assert signed_in(callback)
    cookie = callback.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    seen = [callback.text, *callback.headers.values()]
    for path in (route(server, "page"), route(server, "api")):
        resp = user.app.get(path)
        assert resp.status_code == 200
        seen += [resp.text, *resp.headers.values()]
    assert not any(JWT_LIKE.search(text) for text in seen), "a Scalekit token reached the browser"
    values = [c.value for c in user.app.cookies.jar]
    assert values and not any(JWT_LIKE.search(v or "") or (v or "").count(".") >= 2 for v in values), values
    assert user.me().json()["email"] == CAROL[0]


# ---- the callback ---------------------------------------------------------------------------------
def test_callback_without_or_with_a_mismatched_state_is_refused(server, agent):
    user = agent()
    _, idp = user.to_identity_provider(route(server, "sso_start", email="ivan@acme.test"))
    callback = user.at_identity_provider(idp, "ivan@acme.test")
    query = query_of(callback)
    base = route(server, "callback")
    missing = user.app.get(base, params={"code": query["code"]})
    assert missing.status_code == 400 and not signed_in(missing)
    mismatched = user.app.get(base, params={"code": query["code"], "state": query["state"][:-2] + "xy"})
    assert mismatched.status_code == 400 and not signed_in(mismatched)
    # Login CSRF: the right URL opened in another browser (no state cookie of this login) is refused too.
    elsewhere = agent().app.get(callback)
    assert elsewhere.status_code == 400 and not signed_in(elsewhere)
    assert user.me().status_code == 401


def test_a_code_cannot_be_replayed(server, agent):
    user = agent()
    _, idp = user.to_identity_provider(route(server, "sso_start", email="judy@acme.test"))
    callback = user.at_identity_provider(idp, "judy@acme.test")
    assert signed_in(user.app.get(callback))
    again = user.app.get(callback)  # the same callback URL once more
    assert again.status_code == 400 and not signed_in(again)
    # The used code with the state of a new login of the same browser: Scalekit refuses the code.
    user.app.cookies.clear()
    fresh = user.app.get(route(server, "sso_start", email="judy@acme.test"))
    new_state = query_of(fresh.headers["location"])["state"]
    replay = user.app.get(route(server, "callback"), params={"code": query_of(callback)["code"], "state": new_state})
    assert replay.status_code == 400 and not signed_in(replay)
    assert user.me().status_code == 401


def test_idp_initiated_login_starts_a_fresh_sp_initiated_login(server, agent):
    with local_admin(server) as admin:
        token = admin.post("/_local/idp-initiated-login", json={
            "connection_id": ACME_SAML, "login_hint": "gina@acme.test", "relay_state": "state-chosen-by-the-idp"}).json()
    user = agent()
    resp = user.within_app(user.app.get(route(server, "login"), params={"idp_initiated_login": token["token"]}))
    assert resp.status_code in (302, 303) and resp.headers["location"].startswith(server.local.url), resp.text[:500]
    authorize = query_of(resp.headers["location"])
    assert authorize["connection_id"] == ACME_SAML and authorize["state"] != "state-chosen-by-the-idp"
    assert len(authorize["state"]) >= 20
    _, idp = user.to_identity_provider(route(server, "login") + "?idp_initiated_login=" + token["token"])
    assert signed_in(user.app.get(user.at_identity_provider(idp, "gina@acme.test")))
    assert user.me().json()["email"] == "gina@acme.test"
    # A token Scalekit did not sign starts nothing.
    forged = jwt.encode({**token["claims"], "exp": int(time.time()) + 300},
                        rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                        headers={"kid": jwt.get_unverified_header(token["token"])["kid"]})
    stranger = agent()
    refused = stranger.within_app(stranger.app.get(route(server, "login"), params={"idp_initiated_login": forged}))
    assert refused.status_code == 400 and server.local.url not in refused.headers.get("location", "")


# ---- a Scalekit outage ----------------------------------------------------------------------------
OUTAGE = ("--fault", "rpc:*=UNAVAILABLE", "--fault", "POST /oauth/token=503")


@pytest.mark.parametrize("name", NAMES)
def test_a_scalekit_outage_leaves_password_login_working_and_sso_answers_503(template_server, name):
    """Scalekit is down from before the app starts (every management call UNAVAILABLE, its token
    endpoint 503): the app starts, its own password login works, SSO answers 503 with a clear message;
    once Scalekit is back, SSO works without a restart; a code exchange that meets an outage answers 503."""
    server = template_server(name, local_args=OUTAGE)
    email, password = server.manifest["demo_password_user"].split(":", 1)
    user, later, late = Agent(server), Agent(server), Agent(server)
    try:
        step = user.within_app(user.app.post(route(server, "discover"), data={"email": email}))
        assert step.status_code == 200 and 'name="password"' in step.text.replace("'", '"'), step.text[:500]
        assert signed_in(user.password_login(email, password))
        assert user.me().json()["email"] == email
        sso = user.within_app(user.app.get(route(server, "sso_start", email="bob@acme.test")))
        assert sso.status_code == 503, (sso.status_code, sso.text[:500])
        assert "unavailable" in sso.text.lower() and "password" in sso.text.lower()
        assert server.local.url not in sso.headers.get("location", "")
        with local_admin(server) as admin:
            assert admin.delete("/_local/faults").status_code < 300
        assert signed_in(later.sso_login("bob@acme.test"))
        assert later.me().json()["email"] == "bob@acme.test"
        # Scalekit fails between the IdP and the callback: the code exchange answers 503 as well, not
        # "your answer could not be verified" (that 400 stays for bad codes: test_a_code_cannot_be_replayed).
        _, idp = late.to_identity_provider(route(server, "sso_start", email="bob@acme.test"))
        callback = late.at_identity_provider(idp, "bob@acme.test")
        with local_admin(server) as admin:
            assert admin.post("/_local/faults", json={"spec": "POST /oauth/token=503"}).status_code == 201
            try:
                down = late.app.get(callback)
            finally:
                assert admin.delete("/_local/faults").status_code < 300
        assert down.status_code == 503 and not signed_in(down), (down.status_code, down.text[:500])
        assert "unavailable" in down.text.lower()
    finally:
        user.close()
        later.close()
        late.close()


# ---- account takeover and tenant isolation ------------------------------------------------------
def test_a_hostile_idp_cannot_take_over_another_organizations_account(server, agent):
    assert signed_in(agent().sso_login(CAROL[0]))  # Carol's account has a Globex SSO identity too
    carol = agent()
    assert signed_in(carol.password_login(*CAROL))
    globex_before = members(server, carol, "globex")
    attacker = agent()
    takeover = attacker.sso_login("mallory@acme.test", asserted=CAROL[0])  # Acme's IdP says "carol@globex.test"
    assert takeover.status_code == 403 and not signed_in(takeover), takeover.text[:500]
    assert attacker.me().status_code == 401
    newcomer = attacker.sso_login("mallory@acme.test", asserted="mallory@globex.test")
    assert newcomer.status_code == 403 and not signed_in(newcomer)
    assert members(server, carol, "globex") == globex_before
    me = carol.me().json()
    assert me["email"] == CAROL[0] and me["organization"] == "globex"


def test_one_organization_cannot_reach_anothers_data(server, agent):
    bob = agent()
    assert signed_in(bob.sso_login("bob@acme.test"))
    own = bob.app.get(route(server, "org_data", org="acme"))
    assert own.status_code == 200 and "Rocket skates" in own.text
    other = bob.app.get(route(server, "org_data", org="globex"))
    assert other.status_code in (403, 404) and "Hammock district" not in other.text
    alice = agent()
    assert signed_in(alice.password_login(*ALICE))
    assert alice.app.get(route(server, "members", org="globex")).status_code in (403, 404)
    assert bob.app.get(route(server, "admin")).status_code in (403, 404)  # a member is not an admin


# ---- organization admin page --------------------------------------------------------------------
def test_admin_page_opens_a_fresh_portal_link_each_time(server, agent):
    alice = agent()
    assert signed_in(alice.password_login(*ALICE))
    page = alice.app.get(route(server, "admin"))
    assert page.status_code == 200 and "acme.test" in page.text and "VERIFIED" in page.text
    links = []
    for _ in range(2):
        resp = alice.app.post(route(server, "admin") + "/portal")
        assert resp.status_code in (302, 303)
        links.append(resp.headers["location"])
    assert links[0] != links[1] and all(link.startswith(server.local.url + "/magicLink/") for link in links)
    assert alice.scalekit.get(links[1]).status_code == 200


def test_domain_verification_gates_sso_for_a_new_domain(server, agent):
    alice = agent()
    assert signed_in(alice.password_login(*ALICE))
    assert alice.app.post(route(server, "admin") + "/domains", data={"domain": "acme-labs.test"}).status_code == 303
    page = alice.app.get(route(server, "admin")).text
    assert "acme-labs.test" in page and "PENDING" in page and "_scalekit-verification.acme-labs.test" in page
    # Not verified yet: Acme's IdP asserting that domain gets no account.
    early = agent().sso_login("erin@acme-labs.test", asserted="erin@acme-labs.test",
                              start=route(server, "sso_org_start", org="acme"))
    assert early.status_code == 403 and not signed_in(early)
    with trusting(server.local):
        listed, _ = sdk_client(server.local).domain.list_domains(ACME_ORG)
    pending = next(d.id for d in listed.domains if d.domain == "acme-labs.test")
    with local_admin(server) as admin:  # what Scalekit's DNS check does once the TXT record is published
        assert admin.post(f"/_local/domains/{pending}/verify", json={}).status_code == 200
    assert "PENDING" not in alice.app.get(route(server, "admin")).text
    erin = agent()
    assert signed_in(erin.sso_login("erin@acme-labs.test"))
    assert erin.me().json()["organization"] == "acme"


def test_an_organization_without_sso_can_set_it_up(server, agent):
    email, password = server.manifest["demo_password_user"].split(":", 1)
    pat = agent()
    assert signed_in(pat.password_login(email, password))
    assert "portal" not in pat.app.get(route(server, "admin")).text.lower()
    assert pat.app.post(route(server, "admin") + "/sso").status_code == 303
    assert pat.app.post(route(server, "admin") + "/portal").headers["location"].startswith(server.local.url)


# ---- directory sync webhooks ----------------------------------------------------------------------
def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.split("_", 1)[1])
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode(), "content-type": "application/json"}


def directory_event(kind: str, user: dict, organization_id: str = ACME_ORG) -> bytes:
    event = {"spec_version": "1", "id": "evt_" + str(time.time_ns())[-17:], "type": f"organization.directory.{kind}",
             "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime()) + f"{time.time_ns() % 10**9:09d}Z",
             "environment_id": "env_70000000000000000", "organization_id": organization_id,
             "object": "DirectoryUser", "data": {"organization_id": organization_id, "groups": [], "active": True, **user}}
    return json.dumps(event).encode()


def test_forged_stale_and_replayed_webhooks_are_refused(server, agent):
    secret = server.env["SCALEKIT_WEBHOOK_SECRET"]
    hook = route(server, "webhook")
    carol_off = directory_event("user_updated", {"id": "diruser_1", "email": CAROL[0], "active": False},
                                organization_id=GLOBEX_ORG)
    with httpx.Client(base_url=server.url, timeout=20) as client:
        wrong_key = "whsec_" + base64.b64encode(b"not-the-apps-secret-at-all").decode()
        assert client.post(hook, content=carol_off, headers=sign(wrong_key, "msg_1", int(time.time()), carol_off)).status_code == 401
        stale = sign(secret, "msg_2", int(time.time()) - 600, carol_off)
        assert client.post(hook, content=carol_off, headers=stale).status_code == 401
        tampered = sign(secret, "msg_3", int(time.time()), carol_off.replace(b'"active": false', b'"active": true'))
        assert client.post(hook, content=carol_off, headers=tampered).status_code == 401
        assert client.post(hook, content=carol_off).status_code == 401  # no signature at all
        assert signed_in(agent().password_login(*CAROL)), "a refused webhook changed Carol's account"

        # A genuine delivery is applied once; the same delivery again is not applied a second time.
        created = directory_event("user_created", {"id": "diruser_77", "email": "kim@acme.test"})
        headers = sign(secret, "msg_kim", int(time.time()), created)
        assert client.post(hook, content=created, headers=headers).json()["status"] == "applied"
        deleted = directory_event("user_deleted", {"id": "diruser_77", "email": "kim@acme.test", "active": False})
        assert client.post(hook, content=deleted, headers=sign(secret, "msg_kim_gone", int(time.time()), deleted)).status_code == 200
        replay = client.post(hook, content=created, headers=headers)
        assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    alice = agent()
    assert signed_in(alice.password_login(*ALICE))
    kim = [u for u in members(server, alice, "acme") if u["email"] == "kim@acme.test"]
    assert len(kim) == 1 and kim[0]["active"] is False


def push(server, method: str, path: str, body: dict) -> None:
    """Change Acme's directory in the local environment and wait until the app took the webhooks."""
    with local_admin(server) as admin:
        seen = {e["id"] for e in admin.get("/_local/events").json()["events"]}
        resp = admin.request(method, f"/_local/directories/{ACME_DIRECTORY}{path}", json=body)
        assert resp.status_code in (200, 201), resp.text
        new = [e["id"] for e in admin.get("/_local/events").json()["events"]
               if e["id"] not in seen and e["type"].startswith("organization.directory")]
        assert new
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            rows = [d for e in new for d in admin.get("/_local/webhooks/deliveries", params={"event_id": e}).json()["deliveries"]]
            if rows and all(d["state"] == "succeeded" for d in rows):
                return resp.json()
            assert not any(d["state"] == "failed" for d in rows), rows
            time.sleep(0.05)
        raise AssertionError(f"webhooks not delivered: {rows}")


def test_directory_sync_maps_groups_to_roles_and_deactivation_ends_access_at_once(server, agent):
    dana = agent()
    assert signed_in(dana.sso_login("dana@acme.test"))
    assert dana.me().json()["role"] == "member"
    admins = push(server, "POST", "/groups", {"display_name": "Admins"})
    push(server, "PATCH", f"/users/{DANA_DIRECTORY_USER}", {"groups": [admins["id"]]})
    assert dana.me().json()["role"] == "admin"
    push(server, "DELETE", f"/groups/{admins['id']}", {})
    assert dana.me().json()["role"] == "member"
    # Acme's directory deactivating a Globex user changes nothing.
    push(server, "POST", "/users", {"email": CAROL[0], "active": False})
    assert signed_in(agent().password_login(*CAROL))

    push(server, "PATCH", f"/users/{DANA_DIRECTORY_USER}", {"active": False})
    assert dana.me().status_code == 401  # the session ended with the webhook, not at its expiry
    assert dana.app.get(route(server, "page")).status_code in REDIRECTS
    again = agent().sso_login("dana@acme.test")
    assert again.status_code == 403 and not signed_in(again)


# ---- a real browser ------------------------------------------------------------------------------
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = launcher.REPO_ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def chromium(server, tmp_path_factory):
    """Headless Chromium that trusts exactly the local environment's certificate (as test_browser.py)."""
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (launcher.Path(CHROMIUM).exists() and launcher.Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (./run.sh setup installs them)")
    pem = ssl.get_server_certificate(("127.0.0.1", server.local.port))
    spki = x509.load_pem_x509_certificate(pem.encode()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1000,800",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                "--ignore-certificate-errors-spki-list=" + base64.b64encode(hashlib.sha256(spki).digest()).decode()):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


@pytest.mark.browser
@pytest.mark.parametrize("email, kind, connection", [("nora@acme.test", "SAML", ACME_SAML),
                                                     ("omar@globex.test", "OIDC", GLOBEX_OIDC)])
def test_browser_signs_in_through_domain_routed_sso(server, chromium, email, kind, connection):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(chromium, 20)
    chromium.delete_all_cookies()
    chromium.get(server.url + route(server, "login"))
    chromium.find_element(By.ID, "email").send_keys(email)
    chromium.find_element(By.ID, "continue").click()
    wait.until(lambda d: "/ui/idp" in d.current_url)
    assert chromium.find_element(By.ID, "connection-type").text == kind
    assert chromium.find_element(By.ID, "connection-id").text == connection
    chromium.find_element(By.ID, "idp-submit").click()
    wait.until(lambda d: d.current_url.startswith(server.url + route(server, "page")))
    assert email in chromium.find_element(By.ID, "who").text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chromium.save_screenshot(str(SCREENSHOTS / f"{server.template.name}-{kind.lower()}.png"))
    storage = chromium.execute_script("return JSON.stringify([localStorage, sessionStorage, document.cookie])")
    cookies = [c["value"] for c in chromium.get_cookies()]
    assert not JWT_LIKE.search(storage + " ".join(cookies)), "a Scalekit token reached the browser"
    chromium.find_element(By.ID, "logout").click()
    wait.until(lambda d: route(server, "login") in d.current_url)
