"""The unmodified @scalekit-sdk/node against the local environment, over https and plaintext http."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .helpers import ACME_ORG, ALICE, GLOBEX_ORG, node_env

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TSX = REPO / "node_modules" / ".bin" / "tsx"
pytestmark = [pytest.mark.slow,  # each test runs the Node SDK through tsx
              pytest.mark.skipif(not TSX.exists(), reason="node_modules missing: run ./run.sh setup (npm ci)")]


def run_node(instance, script: str = "sdk_flow.ts", extra_env: dict | None = None) -> dict:
    env = node_env(instance, TEST_ORG_ID=ACME_ORG, **(extra_env or {}))
    proc = subprocess.run([str(TSX), str(HERE / "node" / script)], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=90)
    assert proc.returncode == 0, f"node failed:\n{proc.stderr[-4000:]}\nserver log:\n{instance.log_text()[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_flow(out: dict, url: str) -> None:
    assert out["pkce"]["authorizeStatus"] == 302 and out["pkce"]["stateEchoed"] is True
    assert out["pkce"]["email"] == ALICE and out["pkce"]["userId"].startswith("usr_")
    assert out["pkce"]["hasRefreshToken"] is True and out["pkce"]["expiresIn"] == 300
    assert out["noPkce"] == {"email": ALICE, "hasIdToken": True}
    assert out["claims"]["iss"] == url and out["claims"]["oid"] == ACME_ORG
    assert out["claims"]["sid"].startswith("ses_") and "openid" in out["claims"]["scope"].split()
    assert out["requiredScopesOnUserToken"] is False
    assert out["validAccess"] is True and out["wrongAudience"] is False and out["garbage"] is False
    assert out["refresh"] == {"rotated": True, "newAccessValid": True}
    assert out["logout"] == {"status": 302, "location": "http://localhost:3000/?state=bye"}
    assert out["refreshAfterLogout"] == "rejected"
    assert out["clientToken"] == {"valid": True}
    assert out["getOrganization"] == {"id": ACME_ORG, "displayName": "Acme Inc", "externalId": "acme"}
    assert out["listOrganization"] == {"ids": [GLOBEX_ORG, ACME_ORG], "totalSize": 2}  # newest first (issue #14)
    assert out["notFound"] == {"raised": True, "name": "ScalekitNotFoundException", "isNotFound": True,
                               "errorCode": "ORGANIZATION_NOT_FOUND", "httpStatus": 404}


def test_node_sdk_over_https(autologin):
    before = autologin.stats()
    out = run_node(autologin)
    check_flow(out, autologin.url)
    after = autologin.stats()
    # One Node client: /keys fetched once, and its first gRPC call (no token yet) was refused.
    assert after["keys"] - before.get("keys", 0) == 1
    assert after["grpc.unauthenticated"] - before.get("grpc.unauthenticated", 0) == 1


def test_node_sdk_over_plaintext(local_scalekit_factory):
    plain = local_scalekit_factory(auto_login=ALICE, plaintext=True, fresh=True)
    assert plain.url.startswith("http://")
    check_flow(run_node(plain), plain.url)


def test_node_needs_the_ca_over_https(autologin):
    env = node_env(autologin, TEST_ORG_ID=ACME_ORG)
    env.pop("NODE_EXTRA_CA_CERTS")
    env["SSL_CERT_FILE"] = "/nonexistent"  # Node ignores it; make sure nothing else hands it our CA
    proc = subprocess.run([str(TSX), str(HERE / "node" / "sdk_flow.ts")], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=90)
    assert proc.returncode != 0
    assert "certificate" in proc.stderr.lower()
