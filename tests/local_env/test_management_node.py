"""The management API with the unmodified @scalekit-sdk/node: one tsx run (tests/local_env/node/management.ts)
drives every call against a private instance; this file checks what it saw, typed errors included."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jwt
import pytest

from .helpers import ACME_ORG, ALICE, GLOBEX_ORG, env_client, node_env
from .test_management_python import password_login, refresh

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TSX = REPO / "node_modules" / ".bin" / "tsx"
pytestmark = [pytest.mark.slow,  # each test runs the Node SDK through tsx
              pytest.mark.skipif(not TSX.exists(), reason="node_modules missing: run ./run.sh setup (npm ci)")]


@pytest.fixture(scope="module")
def run(local_scalekit_factory):
    env = local_scalekit_factory(fresh=True)
    with env_client(env, follow_redirects=False) as http:
        tokens = password_login(http, env, ALICE, "alice-password")
        access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        proc = subprocess.run([str(TSX), str(HERE / "node" / "management.ts")], cwd=REPO, capture_output=True, text=True,
                              timeout=120, env=node_env(env, ALICE_SID=access["sid"], ALICE_ID=access["sub"]))
        assert proc.returncode == 0, f"node failed:\n{proc.stderr[-4000:]}\nserver log:\n{env.log_text()[-2000:]}"
        after_revoke = refresh(http, env, tokens["refresh_token"])
    return json.loads(proc.stdout.strip().splitlines()[-1]), after_revoke


def err(name: str, code: str, status: int) -> dict:
    return {"name": name, "errorCode": code, "httpStatus": status}


def test_organizations(run):
    out = run[0]["organizations"]
    assert out["created"] == "Hooli" and out["byExt"] is True and out["updated"] == "Hooli XYZ"
    assert out["metadata"] == {"plan": "pro"} and out["page1"] == 2 and out["total"] == 3 and out["page2First"] is True
    assert out["features"] == [["sso", True]] and out["maxUsers"] == 25 and out["maxUsersGet"] == 25
    assert out["policyBefore"] == 1  # SessionPolicyType.APPLICATION
    assert out["policy"] == [2, 8, 15, True]  # CUSTOM, 8 h, 15 min
    assert out["link"]["id"] and out["link"]["expires"] and "/magicLink/lnk_" in out["link"]["location"]
    assert out["search"] == [True]


def test_connections_domains_directories(run):
    out = run[0]
    assert out["connections"] == {"id": "conn_70000000000002001", "byOrg": ["conn_70000000000002001"],
                                  "byDomain": [GLOBEX_ORG], "toggled": [False, True]}
    assert out["domains"] == {"name": "hooli.test", "listed": ["hooli.test"]}
    assert out["directories"] == {"ids": ["dir_70000000000004001"], "name": "Acme Okta directory",
                                  "primary": "dir_70000000000004001", "users": ["alice@acme.test", "bob@acme.test"],
                                  "usersTotal": 3, "next": "2", "groups": ["Engineering", "Sales"]}


def test_users_roles_sessions_m2m(run):
    out, after_revoke = run
    users = out["users"]
    assert users["email"] == "hank@hooli.test" and users["roles"] == ["member"] and users["got"] == "Hank"
    assert users["ext"] is True and users["updated"] == ["Henry", "ops"] and users["listed"] is True
    assert users["orgUsers"] == ["hank@hooli.test"] and len(users["memberships"]) == 2
    assert users["assigned"] == ["member", "admin"] and users["rolesAfterRemove"] == ["admin"]
    assert users["perms"] == ["organization:read", "organization:write", "users:read", "users:write"]
    assert users["changed"] == ["member"] and len(users["membershipsAfterDelete"]) == 1

    roles = out["roles"]
    assert roles == {"perm": "Read billing", "permListed": True, "role": "billing_viewer", "extends": "billing_viewer",
                     "listed": True, "updated": "Billing reader", "rolePerms": ["billing:read", "users:read"],
                     "effective": ["billing:write", "billing:read"], "orgRole": True, "orgRoles": True}

    assert out["sessions"] == {"user": True, "status": "ACTIVE", "org": ACME_ORG, "active": True, "revoked": "REVOKED",
                               "after": "REVOKED", "revokedAll": 0}
    assert after_revoke.status_code == 400 and after_revoke.json()["error"] == "invalid_grant"

    m2m = out["m2m"]
    assert m2m["plainSecret"] is True and m2m["token"] == 200
    # custom claims nested under custom_claims, none at the top level (reference/interceptors/triggers.mdx)
    assert m2m["claims"] == [True, ACME_ORG, ["billing:read"], ["https://billing.acme.test"], "finance", None]
    assert m2m["got"] == "Billing sync" and m2m["listed"] is True and m2m["updated"] == "Billing sync v2"
    assert m2m["oldSecret"] == "invalid_client" and m2m["newSecret"] == 200


def test_typed_errors(run):
    errors = run[0]["errors"]
    not_found = "ScalekitNotFoundException"
    conflict = "ScalekitConflictException"
    bad = "ScalekitBadRequestException"
    assert errors["orgNotFound"] == err(not_found, "ORGANIZATION_NOT_FOUND", 404)
    assert errors["orgDuplicate"] == err(conflict, "ORGANIZATION_EXTERNAL_ID_EXISTS", 409)
    assert errors["orgEmptyName"] == err(bad, "INVALID_ARGUMENT", 400)
    assert errors["orgPageSize"] == err(bad, "INVALID_ARGUMENT", 400)
    assert errors["connNotFound"] == err(not_found, "CONNECTION_NOT_FOUND", 404)
    assert errors["domainDuplicate"] == err(conflict, "DOMAIN_ALREADY_EXISTS", 409)
    assert errors["domainInvalid"] == err(bad, "INVALID_DOMAIN", 400)
    assert errors["domainGone"] == err(not_found, "DOMAIN_NOT_FOUND", 404)
    assert errors["dirNotFound"] == err(not_found, "DIRECTORY_NOT_FOUND", 404)
    assert errors["noPrimary"]["name"] == "String"  # the SDK rejects with a plain string (sdk.md 2.5)
    assert errors["userDuplicate"] == err(conflict, "USER_ALREADY_EXISTS", 409)
    assert errors["userBadEmail"] == err(bad, "INVALID_EMAIL", 400)
    assert errors["userBadRole"] == err(bad, "ROLE_NOT_FOUND", 400)
    assert errors["userGone"] == err(not_found, "USER_NOT_FOUND", 404)
    assert errors["roleDuplicate"] == err(bad, "INVALID_ARGUMENT", 400)  # "duplicate key not allowed" (issue #14)
    assert errors["roleMissing"] == err(not_found, "ROLE_NOT_FOUND", 404)
    assert errors["permMissing"] == err(not_found, "PERMISSION_NOT_FOUND", 404)
    assert errors["roleBadName"] == err(bad, "INVALID_ARGUMENT", 400)
    assert errors["roleGone"] == err(not_found, "ROLE_NOT_FOUND", 404)
    assert errors["sessionMissing"] == err(not_found, "SESSION_NOT_FOUND", 404)
    assert errors["m2mGone"] == err(not_found, "CLIENT_NOT_FOUND", 404)
    assert errors["orgGone"] == err(not_found, "ORGANIZATION_NOT_FOUND", 404)
