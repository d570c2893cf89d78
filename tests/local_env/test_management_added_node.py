"""The RPCs added for issue #14 through the unmodified @scalekit-sdk/node (where it has the method):
one tsx run of tests/local_env/node/management_added.ts against a private instance."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .helpers import ACME_ORG, node_env

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TSX = REPO / "node_modules" / ".bin" / "tsx"
pytestmark = [pytest.mark.slow,  # runs the Node SDK through tsx
              pytest.mark.skipif(not TSX.exists(), reason="node_modules missing: run ./run.sh setup (npm ci)")]


@pytest.fixture(scope="module")
def out(local_scalekit_factory):
    env = local_scalekit_factory(fresh=True)
    proc = subprocess.run([str(TSX), str(HERE / "node" / "management_added.ts")], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=node_env(env))
    assert proc.returncode == 0, f"node failed:\n{proc.stderr[-4000:]}\nserver log:\n{env.log_text()[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_api_keys(out):
    t = out["tokens"]
    assert t["seeded"] == [ACME_ORG, "usr_70000000000003001", "staging"] and t["created"] and t["listed"]
    assert t["updated"] == {"team": "sre"}  # Node replaces the whole map
    assert t["afterInvalidate"]["name"] == "ScalekitValidateTokenFailureException"


def test_passwordless(out):
    p = out["passwordless"]
    assert p["type"] == 3 and p["email"] == "kim@acme.test" and p["state"] == "n-1"  # 3: LINK_OTP
    assert p["resent"] is True and p["byLink"] == "lee@acme.test"
    assert p["reuse"]["name"] == "ScalekitBadRequestException" and p["reuse"]["httpStatus"] == 400


def test_passkeys_roles_invites_and_the_rest(out):
    assert out["webauthn"] == {"listed": ["Alice's laptop"], "renamed": "Node laptop", "deleted": True, "after": 0}
    assert out["roles"] == {"member": "observer", "orgMember": "member", "base": None, "orgBase": None}
    assert out["invites"] == {"status": 3, "resent": 1, "mails": 2}  # 3: PENDING_INVITE
    misc = out["misc"]
    assert misc["dir"] is True and misc["dirGone"]["errorCode"] == "DIRECTORY_NOT_FOUND"
    assert misc["apps"] == ["hubspot-crm"] and misc["events"] and set(misc["events"]) == {"user.created"}
