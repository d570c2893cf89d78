"""Fault injection: each injected fault reaches the caller (the real SDKs, httpx, the CLI) as the
documented error, for exactly the next N matching requests."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .helpers import ACME_ORG, GLOBEX_ORG, env_client, node_env, sdk_client

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TSX = REPO / "node_modules" / ".bin" / "tsx"
LIST = "rpc:OrganizationService/ListOrganization"
GET = "rpc:OrganizationService/GetOrganization"


@pytest.fixture(scope="module")
def env(local_scalekit_factory):
    return local_scalekit_factory(fresh=True)


@pytest.fixture(scope="module")
def admin(env):
    with env_client(env) as client:
        yield client


@pytest.fixture(autouse=True)
def no_faults_left(admin):
    admin.delete("/_local/faults")
    yield
    admin.delete("/_local/faults")


@pytest.fixture(scope="module")
def py_client(env, sdk_env):
    return sdk_client(env)


def fault(admin, **body) -> dict:
    resp = admin.post("/_local/faults", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def hits(admin, fault_id: str) -> int:
    return next(f for f in admin.get("/_local/faults").json()["faults"] if f["id"] == fault_id)["hits"]


# ---- HTTP ---------------------------------------------------------------------------------------
def test_token_500_raises_the_sdk_server_exception_then_recovers(env, admin, sdk_env):
    from scalekit import ScalekitClient
    from scalekit.common.exceptions import ScalekitInternalServerException

    f = fault(admin, spec="POST /oauth/token=500 x1")
    with pytest.raises(ScalekitInternalServerException) as info:
        ScalekitClient(env.url, env.client_id, env.client_secret)
    assert "fault injected" in str(info.value)
    assert hits(admin, f["id"]) == 1
    ScalekitClient(env.url, env.client_id, env.client_secret)  # the 2nd request is not faulted


def test_count_n_then_the_next_request_succeeds(admin):
    fault(admin, target="GET /keys", status=503, count=2)
    answers = [admin.get("/keys") for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].json()["error"] == "temporarily_unavailable"
    assert answers[0].headers["content-type"] == "application/json"
    assert answers[2].json()["keys"][0]["kid"]
    listed = admin.get("/_local/faults").json()["faults"][0]
    assert listed["hits"] == 2 and listed["remaining"] == 0 and listed["active"] is False


def test_method_must_match_and_admin_routes_are_never_faulted(admin):
    fault(admin, spec="POST /keys=500")
    assert admin.get("/keys").status_code == 200
    assert admin.post("/_local/faults", json={"spec": "/_local/stats=500"}).status_code == 400
    fault(admin, spec="/.well-known/openid-configuration=500")  # any method, every request
    assert admin.get("/.well-known/openid-configuration").status_code == 500
    assert admin.get("/.well-known/openid-configuration").status_code == 500
    assert admin.get("/_local/health").status_code == 200


def test_invalid_json_drop_kid_and_issuer(admin):
    fault(admin, spec="GET /.well-known/openid-configuration=invalid_json x1")
    resp = admin.get("/.well-known/openid-configuration")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.text)
    fault(admin, spec="GET /.well-known/openid-configuration=issuer:https://other-env.scalekit.com x1")
    doc = admin.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == "https://other-env.scalekit.com" and doc["jwks_uri"].endswith("/keys")
    fault(admin, spec="GET /keys=drop_kid x1")
    keys = admin.get("/keys").json()["keys"]
    assert keys and all("kid" not in k and k["kty"] == "RSA" for k in keys)
    assert "kid" in admin.get("/keys").json()["keys"][0]


def test_http_delay_beyond_a_client_timeout(admin):
    fault(admin, spec="GET /keys=delay:1500ms x1")
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        admin.get("/keys", timeout=0.5)
    assert time.monotonic() - started < 1.4
    time.sleep(1.1)  # let the delayed request finish
    assert admin.get("/keys", timeout=5).status_code == 200


@pytest.mark.parametrize("body, fragment", [
    ({"spec": "POST /oauth/token"}, "use TARGET=ACTION"),
    ({"spec": "POST /oauth/token=5000"}, "bad action"),
    ({"spec": "GET /keys=UNAVAILABLE"}, "grpc_code applies to rpc"),
    ({"spec": "rpc:OrganizationService/ListOrganization=500"}, "rpc: targets take"),
    ({"spec": "GET /keys=delay:forever"}, "bad delay"),
    ({"target": "GET /keys", "status": 200}, "400 to 599"),
    ({"target": "GET /keys", "count": 0}, "count"),
    ({"target": "GET /keys"}, "does nothing"),
    ({"target": "GET /keys", "status": 500, "colour": 1}, "unknown key"),
])
def test_bad_faults_are_refused(admin, body, fragment):
    resp = admin.post("/_local/faults", json=body)
    assert resp.status_code == 400 and fragment in resp.json()["error_description"], resp.text


def test_fault_flag_on_the_command_line(local_scalekit_factory):
    instance = local_scalekit_factory(fresh=True, faults=("GET /keys=500 x2", "GET /.well-known/openid-configuration=delay:10ms"))
    with httpx.Client(base_url=instance.url, verify=instance.ca_bundle) as client:
        assert [client.get("/keys").status_code for _ in range(3)] == [500, 500, 200]
        listed = client.get("/_local/faults").json()["faults"]
    assert [f["target"] for f in listed] == ["GET /keys", "GET /.well-known/openid-configuration"]
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "local_scalekit.py"), "--port", "0",
                           "--fault", "GET /keys=teapot"], check=False, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--fault 'GET /keys=teapot': bad action 'teapot'" in proc.stderr


# ---- gRPC, Python SDK -------------------------------------------------------------------------------
def test_unavailable_once_is_retried_by_the_python_sdk(admin, py_client):
    f = fault(admin, target=LIST, grpc_code="UNAVAILABLE", count=1)
    orgs = py_client.organization.list_organizations(page_size=5)[0].organizations
    assert {o.id for o in orgs} >= {ACME_ORG, GLOBEX_ORG}
    assert hits(admin, f["id"]) == 1


def test_unavailable_three_times_raises_in_python(admin, py_client):
    from scalekit.common.exceptions import ScalekitServiceUnavailableException

    f = fault(admin, spec=f"{LIST}=UNAVAILABLE x3")
    with pytest.raises(ScalekitServiceUnavailableException):
        py_client.organization.list_organizations(page_size=5)
    assert hits(admin, f["id"]) == 3  # the first call and the SDK's two retries
    assert py_client.organization.list_organizations(page_size=5)[0].organizations


@pytest.mark.parametrize("code, exception", [("NOT_FOUND", "ScalekitNotFoundException"),
                                             ("INTERNAL", "ScalekitInternalServerException"),
                                             ("PERMISSION_DENIED", "ScalekitForbiddenException")])
def test_grpc_codes_become_typed_python_exceptions(admin, py_client, code, exception):
    fault(admin, spec=f"{GET}={code} x1")
    with pytest.raises(Exception) as info:
        py_client.organization.get_organization(ACME_ORG)
    assert type(info.value).__name__ == exception
    assert info.value.error_code == "FAULT_INJECTED"
    assert py_client.organization.get_organization(ACME_ORG)[0].organization.id == ACME_ORG


def test_grpc_delay_beyond_the_call_timeout(env, admin, sdk_env):
    from scalekit import ScalekitClient
    from scalekit.common.exceptions import ScalekitGatewayTimeoutException

    client = ScalekitClient(env.url, env.client_id, env.client_secret, call_timeout_s=0.5)
    f = fault(admin, spec=f"{LIST}=delay:1500ms x1")
    started = time.monotonic()
    with pytest.raises(ScalekitGatewayTimeoutException):
        client.organization.list_organizations(page_size=5)
    assert time.monotonic() - started < 1.4  # DEADLINE_EXCEEDED is not retried
    assert hits(admin, f["id"]) == 1


def test_service_wildcard_and_full_service_name(admin, py_client):
    fault(admin, spec="rpc:scalekit.v1.organizations.OrganizationService/*=NOT_FOUND x1")
    from scalekit.common.exceptions import ScalekitNotFoundException

    with pytest.raises(ScalekitNotFoundException):
        py_client.organization.list_organizations(page_size=5)
    fault(admin, spec="rpc:OtherService/ListOrganization=NOT_FOUND")
    assert py_client.organization.list_organizations(page_size=5)[0].organizations


# ---- gRPC, Node SDK ----------------------------------------------------------------------------------
@pytest.mark.slow  # runs the Node SDK through tsx
def test_node_sdk_sees_retries_and_typed_exceptions(env):
    if not TSX.exists():
        pytest.fail("node_modules missing: run ./run.sh setup (npm ci)")
    steps = [
        {"fault": {"target": LIST, "grpc_code": "UNAVAILABLE", "count": 1}, "call": "list"},
        {"fault": {"target": GET, "grpc_code": "NOT_FOUND", "count": 1}, "call": "get", "orgId": ACME_ORG},
        {"fault": {"target": GET, "grpc_code": "INTERNAL", "count": 1}, "call": "get", "orgId": ACME_ORG},
        # Node retries Unavailable 3 times (Python twice): 4 failures exhaust it.
        {"fault": {"target": LIST, "grpc_code": "UNAVAILABLE", "count": 4}, "call": "list"},
        {"fault": None, "call": "get", "orgId": ACME_ORG},
    ]
    proc = subprocess.run([str(TSX), str(HERE / "node" / "faults.ts")], input=json.dumps({"steps": steps}),
                          env=node_env(env), cwd=REPO, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    retried, not_found, internal, exhausted, after = json.loads(proc.stdout.strip().splitlines()[-1])
    assert retried["ok"] is True and retried["value"] >= 2 and retried["hits"] == 1, retried
    assert not_found | {"ms": 0} == {"ok": False, "name": "ScalekitNotFoundException", "errorCode": "FAULT_INJECTED",
                                     "grpcStatus": 5, "httpStatus": 404, "ms": 0, "hits": 1}
    assert internal["name"] == "ScalekitInternalServerException" and internal["hits"] == 1, internal
    assert exhausted["ok"] is False and exhausted["name"] == "ScalekitServiceUnavailableException", exhausted
    assert exhausted["hits"] == 4, exhausted  # the call and 3 retries (the token-less first call was in step 1)
    assert after == {"ok": True, "value": ACME_ORG, "ms": after["ms"]}
