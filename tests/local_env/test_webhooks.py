"""Webhooks: events from the directory push route and from logins reach a receiver on 127.0.0.1,
signed so that both SDKs' verify functions accept them (and refuse tampered or stale ones), with
retries and a delivery log."""
from __future__ import annotations

import json
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .helpers import (
    ACME_ORG,
    ALICE,
    QuietHandler,
    authorize_params,
    env_client,
    loopback_base,
    serve_on_loopback,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TSX = REPO / "node_modules" / ".bin" / "tsx"
FAST = {"retry_delays_ms": [20, 40], "timeout_ms": 2000}


class Receiver:
    """Records every POST (lower-cased headers, raw body); answers 500 to the first `fail_first`."""

    def __init__(self, fail_first: int = 0, always_fail: bool = False):
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.fail_first, self.always_fail = fail_first, always_fail
        self.cond = threading.Condition()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.cond:
                    receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    failing = receiver.always_fail or len(receiver.posts) <= receiver.fail_first
                    receiver.cond.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = serve_on_loopback(Handler, daemon_threads=True)
        self.url = loopback_base(self.server) + "/webhooks/scalekit"

    def wait(self, n: int, timeout: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.posts) >= n, timeout), f"got {len(self.posts)} of {n} posts"
            return list(self.posts)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiver(**kwargs):
    r = Receiver(**kwargs)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def env(local_scalekit_factory):
    return local_scalekit_factory(auto_login=ALICE, fresh=True)


@pytest.fixture(scope="module")
def admin(env):
    with env_client(env) as client:
        yield client


@pytest.fixture(autouse=True)
def unregister_all(request):
    """Each test starts with no endpoints, so one test's closed receiver cannot affect another."""
    yield
    if "admin" in request.fixturenames:
        admin = request.getfixturevalue("admin")
        for endpoint in admin.get("/_local/webhooks").json()["endpoints"]:
            admin.delete(f"/_local/webhooks/{endpoint['id']}")


def register(admin, url: str, **extra) -> dict:
    resp = admin.post("/_local/webhooks", json={"url": url, **FAST, **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def deliveries(admin, **query) -> list[dict]:
    resp = admin.get("/_local/webhooks/deliveries", params=query)
    assert resp.status_code == 200
    return resp.json()["deliveries"]


def wait_final(admin, event_id: str, endpoint_id: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = deliveries(admin, event_id=event_id, endpoint_id=endpoint_id)
        if rows and rows[0]["state"] != "pending":
            return rows[0]
        time.sleep(0.02)
    raise AssertionError(f"delivery of {event_id} still pending: {deliveries(admin, event_id=event_id)}")


def python_verify(secret: str, headers: dict, body: bytes):
    from scalekit import ScalekitClient

    # verify_webhook_payload needs no network, but the constructor fetches a token: use the
    # class without __init__ (the method only reads its arguments).
    client = ScalekitClient.__new__(ScalekitClient)
    try:
        return client.verify_webhook_payload(secret, headers, body)
    except Exception as exc:  # noqa: BLE001 - WebhookVerificationError, compared by the caller
        return exc


def node_verify(items: list[dict]) -> list[dict]:
    if not TSX.exists():
        pytest.fail("node_modules missing: run ./run.sh setup (npm ci)")
    proc = subprocess.run([str(TSX), str(HERE / "node" / "verify_webhooks.ts")], input=json.dumps({"items": items}),
                          check=False, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def headers_of(h: dict) -> dict:
    return {k: h[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}


def test_directory_events_are_signed_for_both_sdks(env, admin):
    with receiver() as r:
        endpoint = register(admin, r.url, events=["organization.directory.*"])
        base = "/_local/directories/dir_70000000000009001"
        user = admin.post(f"{base}/users", json={"organization_id": ACME_ORG, "email": "dana@acme.test",
                                                 "given_name": "Dana", "family_name": "Lee"})
        assert user.status_code == 201, user.text
        group = admin.post(f"{base}/groups", json={"display_name": "Engineering"})
        assert group.status_code == 201, group.text
        gid, uid = group.json()["id"], user.json()["id"]
        assert admin.patch(f"{base}/users/{uid}", json={"groups": [gid], "active": True}).status_code == 200
        assert admin.patch(f"{base}/groups/{gid}", json={"display_name": "Eng"}).status_code == 200
        assert admin.delete(f"{base}/users/{uid}").status_code == 200
        assert admin.delete(f"{base}/groups/{gid}").status_code == 200
        listing = admin.get(base).json()
        assert listing["users"] == [] and listing["groups"] == []
        posts = r.wait(6)
    events = [json.loads(body) for _, body in posts]
    assert sorted(e["type"] for e in events) == sorted([
        "organization.directory.user_created", "organization.directory.group_created",
        "organization.directory.user_updated", "organization.directory.group_updated",
        "organization.directory.user_deleted", "organization.directory.group_deleted"])
    created = next(e for e in events if e["type"] == "organization.directory.user_created")
    assert set(created) == {"spec_version", "id", "type", "occurred_at", "environment_id", "organization_id",
                            "object", "data"}
    assert created["spec_version"] == "1" and created["id"].startswith("evt_")
    assert created["object"] == "DirectoryUser" and created["organization_id"] == ACME_ORG
    assert created["data"]["email"] == "dana@acme.test" and created["data"]["id"] == uid
    assert created["data"]["directory_id"] == "dir_70000000000009001"
    updated = next(e for e in events if e["type"] == "organization.directory.user_updated")
    assert updated["data"]["groups"] == [{"id": gid, "name": "Engineering"}]
    assert next(e for e in events if e["type"] == "organization.directory.group_created")["object"] == "DirectoryGroup"
    for headers, body in posts:
        assert headers["content-type"] == "application/json"
        assert headers["webhook-id"] == json.loads(body)["id"]
        assert python_verify(endpoint["secret"], headers_of(headers), body) is True
    results = node_verify([{"secret": endpoint["secret"], "headers": headers_of(h), "body": b.decode()} for h, b in posts])
    assert results == [{"ok": True}] * len(posts)


def test_tampered_stale_or_foreign_deliveries_are_refused_by_both_sdks(env, admin):
    from scalekit_local.webhooks import new_secret, sign

    with receiver() as r:
        endpoint = register(admin, r.url)
        assert admin.post("/_local/events", json={"type": "organization.updated", "data": {"id": ACME_ORG},
                                                  "organization_id": ACME_ORG}).status_code == 201
        headers, body = r.wait(1)[0]
    secret = endpoint["secret"]
    tampered = body.replace(ACME_ORG.encode(), b"org_70000000000001002")
    old_ts = int(time.time()) - 600
    stale = sign(secret, headers["webhook-id"], old_ts, body)  # correctly signed, 10 minutes old
    cases = {
        "genuine": (secret, headers_of(headers), body),
        "tampered body": (secret, headers_of(headers), tampered),
        "old timestamp": (secret, stale, body),
        "other secret": (new_secret(), headers_of(headers), body),
    }
    py = {name: python_verify(*args) for name, args in cases.items()}
    assert py["genuine"] is True
    for name in ("tampered body", "old timestamp", "other secret"):
        assert type(py[name]).__name__ == "WebhookVerificationError", (name, py[name])
    assert "too old" in str(py["old timestamp"])
    node = dict(zip(cases, node_verify([{"secret": s, "headers": h, "body": b.decode()} for s, h, b in cases.values()])))
    assert node["genuine"] == {"ok": True}
    for name in ("tampered body", "old timestamp", "other secret"):
        assert node[name]["ok"] is False and node[name]["name"] == "WebhookVerificationError", (name, node[name])
    assert "too old" in node["old timestamp"]["message"]


def test_login_emits_user_login(env, admin):
    with receiver() as r:
        endpoint = register(admin, r.url, events=["user.login"])
        with httpx.Client(base_url=env.url, verify=env.ca_bundle) as browser:
            resp = browser.get("/oauth/authorize", params=authorize_params(env.client_id))
        assert resp.status_code == 302
        headers, body = r.wait(1)[0]
    event = json.loads(body)
    assert event["type"] == "user.login" and event["object"] == "User"
    assert event["data"]["user"]["email"] == ALICE and event["organization_id"] == ACME_ORG
    assert event["data"]["user_session"]["organization_id"] == ACME_ORG
    assert python_verify(endpoint["secret"], headers_of(headers), body) is True
    admin.delete(f"/_local/webhooks/{endpoint['id']}")


def test_event_filter_and_unregister(env, admin):
    with receiver() as r:
        endpoint = register(admin, r.url, events=["organization.deleted"])
        admin.post("/_local/events", json={"type": "organization.updated", "data": {}})
        admin.post("/_local/events", json={"type": "organization.deleted", "data": {"id": "org_1"}})
        assert json.loads(r.wait(1)[0][1])["type"] == "organization.deleted"
        assert admin.delete(f"/_local/webhooks/{endpoint['id']}").status_code == 204
        admin.post("/_local/events", json={"type": "organization.deleted", "data": {}})
        time.sleep(0.2)
        assert len(r.posts) == 1
    assert admin.delete(f"/_local/webhooks/{endpoint['id']}").status_code == 404


def test_failing_receiver_is_retried_until_it_answers(env, admin):
    with receiver(fail_first=2) as r:
        endpoint = register(admin, r.url, max_attempts=4)
        event = admin.post("/_local/events", json={"type": "user.updated", "data": {"id": "usr_1"}}).json()
        row = wait_final(admin, event["id"], endpoint["id"])
        posts = r.wait(3)
    admin.delete(f"/_local/webhooks/{endpoint['id']}")
    assert row["state"] == "succeeded" and row["attempts"] == 3 and row["status_codes"] == [500, 500, 200], row
    assert row["type"] == "user.updated" and row["url"] == r.url and row["event_id"] == event["id"]
    assert {h["webhook-id"] for h, _ in posts} == {event["id"]}  # the same id on every attempt
    for headers, body in posts:
        assert python_verify(endpoint["secret"], headers_of(headers), body) is True


def test_permanently_failing_receiver_fails_without_hurting_the_caller(env, admin):
    with receiver(always_fail=True) as r:
        endpoint = register(admin, r.url, max_attempts=3, retry_delays_ms=[30])
        started = time.monotonic()
        push = admin.post("/_local/directories/dir_70000000000009002/users",
                          json={"organization_id": ACME_ORG, "email": "erin@acme.test"})
        assert push.status_code == 201 and time.monotonic() - started < 1.0
        token = admin.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": env.client_id,
                                                 "client_secret": env.client_secret})
        assert token.status_code == 200  # the environment keeps answering while deliveries fail
        events = admin.get("/_local/events", params={"type": "organization.directory.user_created"}).json()["events"]
        row = wait_final(admin, events[-1]["id"], endpoint["id"])
        assert len(r.posts) >= 3
    admin.delete(f"/_local/webhooks/{endpoint['id']}")
    assert row["state"] == "failed" and row["attempts"] == 3 and row["status_codes"] == [500, 500, 500], row


def test_unreachable_receiver_is_logged_as_failed(env, admin):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = register(admin, f"http://127.0.0.1:{port}/hook", max_attempts=2, retry_delays_ms=[10])
    event = admin.post("/_local/events", json={"type": "user.deleted", "data": {"id": "usr_2"}}).json()
    row = wait_final(admin, event["id"], endpoint["id"])
    admin.delete(f"/_local/webhooks/{endpoint['id']}")
    assert row["state"] == "failed" and row["status_codes"] == [None, None], row
    assert "refused" in row["errors"][0].lower(), row


@pytest.mark.parametrize("body, fragment", [
    ({"url": "ftp://x"}, "url"),
    ({"url": "http://127.0.0.1:9/x", "secret": "not-a-secret"}, "whsec_"),
    ({"url": "http://127.0.0.1:9/x", "max_attempts": 0}, "max_attempts"),
    ({"url": "http://127.0.0.1:9/x", "retry_delays_ms": []}, "retry_delays_ms"),
    ({"url": "http://127.0.0.1:9/x", "colour": "red"}, "unknown key"),
])
def test_bad_registrations_are_refused(admin, body, fragment):
    resp = admin.post("/_local/webhooks", json=body)
    assert resp.status_code == 400 and fragment in resp.json()["error_description"], resp.text


def test_directory_route_errors(admin):
    assert admin.post("/_local/directories/dir_404/users", json={"email": "a@b.test"}).status_code == 404
    resp = admin.post("/_local/directories/dir_405/users", json={"organization_id": ACME_ORG})
    assert resp.status_code == 400 and "email" in resp.text
    assert admin.post("/_local/directories/dir_405/users",
                      json={"email": "x@acme.test", "groups": ["dirgroup_1"]}).status_code == 400


def test_seeded_endpoint_and_social_signup_events(tmp_path):
    """A seed's `webhooks` entry; a social sign-up emits organization, user, membership and signup events."""
    import yaml
    from scalekit_local import DEFAULT_SEED_PATH, LocalScalekit
    from scalekit_local.webhooks import new_secret

    secret = new_secret()
    with receiver() as r:
        seed = yaml.safe_load(DEFAULT_SEED_PATH.read_text())
        seed["webhooks"] = [{"url": r.url, "secret": secret, "events": ["organization.*", "user.*"], **FAST}]
        path = tmp_path / "seed.yaml"
        path.write_text(yaml.safe_dump(seed))
        with LocalScalekit(port=0, seed_path=path, data_dir=tmp_path / "data") as env, \
                httpx.Client(base_url=env.url, verify=env.ca_bundle) as browser:
            resp = browser.get("/oauth/authorize", params=authorize_params(env.client_id, provider="github"))
            request_id = httpx.URL(resp.headers["location"]).params.get("r") if resp.status_code == 302 else None
            if request_id is None:  # the consent page is served directly
                import re
                request_id = re.search(r'name="r" value="([^"]+)"', resp.text).group(1)
            done = browser.post("/ui/social", data={"r": request_id, "provider": "github", "action": "allow",
                                                    "email": "newbie@example.test"})
            assert done.status_code == 302, done.text
            posts = r.wait(5)
            emitted = [e["type"] for e in env.store.events.recent_events()]
    expected = ["organization.created", "user.created", "user.organization_membership_created", "user.signup",
                "user.login"]
    assert emitted == expected  # emission order; deliveries run in parallel and may arrive in any order
    assert sorted(json.loads(b)["type"] for _, b in posts) == sorted(expected)
    signup = next(json.loads(b) for _, b in posts if json.loads(b)["type"] == "user.signup")
    assert signup["object"] == "OrgMembership" and signup["data"]["user"]["email"] == "newbie@example.test"
    assert all(python_verify(secret, headers_of(h), b) is True for h, b in posts)


def test_management_api_changes_emit_organization_events(env, admin, sdk_env):
    """gRPC CreateOrganization / UpdateOrganization / DeleteOrganization through the Python SDK."""
    from scalekit import ScalekitClient
    from scalekit.v1.organizations.organizations_pb2 import (
        CreateOrganization,
        UpdateOrganization,
    )

    client = ScalekitClient(env.url, env.client_id, env.client_secret)
    with receiver() as r:
        endpoint = register(admin, r.url, events=["organization.*"])
        org = client.organization.create_organization(CreateOrganization(display_name="Initech"))[0].organization
        client.organization.update_organization(org.id, UpdateOrganization(display_name="Initech Ltd"))
        client.organization.delete_organization(org.id)
        posts = r.wait(3)
    events = sorted((json.loads(b) for _, b in posts), key=lambda e: e["occurred_at"])
    assert [e["type"] for e in events] == ["organization.created", "organization.updated", "organization.deleted"]
    assert all(e["organization_id"] == org.id and e["object"] == "Organization" for e in events)
    assert events[1]["data"]["display_name"] == "Initech Ltd" and events[0]["data"]["region_code"] == "US"
    assert all(python_verify(endpoint["secret"], headers_of(h), b) is True for h, b in posts)


def test_management_api_changes_emit_user_and_membership_events(env, admin, sdk_env):
    """gRPC user and membership calls through the Python SDK emit the user.* events, signed."""
    from scalekit import ScalekitClient
    from scalekit.v1.commons.commons_pb2 import Role
    from scalekit.v1.users.users_pb2 import CreateUser, UpdateMembership, UpdateUser

    client = ScalekitClient(env.url, env.client_id, env.client_secret)
    acme = "org_70000000000001001"
    with receiver() as r:
        endpoint = register(admin, r.url, events=["user.*"])
        user = client.users.create_user_and_membership(acme, CreateUser(email="dave@acme.test"),
                                                       send_invitation_email=False)[0].user
        client.users.update_user(user.id, UpdateUser(metadata={"team": "blue"}))
        client.users.update_membership(acme, user.id, UpdateMembership(roles=[Role(name="admin")]))
        client.users.delete_membership(acme, user.id)
        client.users.delete_user(user.id)
        posts = r.wait(6)
    events = sorted((json.loads(b) for _, b in posts), key=lambda e: e["occurred_at"])
    assert [e["type"] for e in events] == [
        "user.created", "user.organization_membership_created", "user.updated",
        "user.organization_membership_updated", "user.organization_membership_deleted", "user.deleted"]
    assert events[0]["data"]["email"] == "dave@acme.test" and events[2]["data"]["metadata"] == {"team": "blue"}
    assert [r["name"] for r in events[3]["data"]["user"]["membership"]["roles"]] == ["admin"]
    assert all(python_verify(endpoint["secret"], headers_of(h), b) is True for h, b in posts)
