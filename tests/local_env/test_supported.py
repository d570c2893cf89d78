"""SUPPORTED.md, the local environment's coverage matrix, is generated (scripts/scalekit_local/coverage.py)
and must match what the generator produces now; its claims are checked against a running instance: every
RPC it calls implemented answers something other than UNIMPLEMENTED, every other one answers UNIMPLEMENTED."""
from __future__ import annotations

import json
import re
from pathlib import Path

import grpc
import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "scripts" / "scalekit_local" / "seed.schema.json"
TARGET = 0.95  # issue #14: at least 95% of the non-AgentKit RPCs that either SDK calls


@pytest.fixture(scope="module")
def coverage():
    from scalekit_local import coverage

    return coverage


@pytest.fixture(scope="module")
def data(coverage):
    return coverage.collect()


def test_supported_md_is_current(coverage, data):
    committed = (REPO / "SUPPORTED.md").read_text()
    assert committed == coverage.render(data), \
        "SUPPORTED.md is stale: run .venv/bin/python scripts/scalekit_local/coverage.py --write"


def test_the_rpcs_the_sdks_call_are_implemented(data):
    called = data["called"]
    done = [r for r in called if r.implemented]
    missing = [f"{r.service}/{r.rpc}" for r in called if not r.implemented]
    assert len(called) > 100, len(called)  # the inventory is read from both SDKs, not made up
    assert len(done) / len(called) >= TARGET, missing


def test_both_sdks_are_read(data):
    assert "ResendInvite" in data["python"]["scalekit.v1.users.UserService"]
    assert "ResendInvite" in data["node"]["scalekit.v1.users.UserService"]
    rows = {f"{r.service}/{r.rpc}": r for r in data["called"]}
    assert rows["UserService/ResendInvite"].python == ["users.resend_invite"]
    assert rows["UserService/ResendInvite"].node == ["user.resendInvite"]
    assert rows["ConnectionService/GetEnvironmentConnection"].node == []  # Python only
    assert rows["UserService/SearchUsers"].python == []                    # Node only


def test_every_seed_key_named_exists_in_the_schema(coverage):
    schema = json.loads(SCHEMA.read_text())

    def exists(path: str) -> bool:
        node = schema
        for part in path.split("."):
            part = part.removesuffix("[]")
            if node.get("type") == "array":
                node = node["items"]
            node = node.get("properties", {}).get(part)
            if node is None:
                return False
        return True

    named = {key for area in coverage.AREAS for key in area.seed}
    assert named and all(exists(key) for key in named), sorted(k for k in named if not exists(k))


def test_what_it_calls_implemented_is_answered_live(local_scalekit_factory, data):
    """Call every RPC of the emulated services with an empty request on a private instance."""
    from google.protobuf import message_factory

    env = local_scalekit_factory(fresh=True)
    token = httpx.post(f"{env.url}/oauth/token", verify=env.ca_bundle, data={
        "grant_type": "client_credentials", "client_id": env.client_id, "client_secret": env.client_secret}).json()["access_token"]
    creds = grpc.ssl_channel_credentials(root_certificates=Path(env.ca_cert).read_bytes())
    channel = grpc.secure_channel(f"127.0.0.1:{env.port}", creds)
    emulated = {s for area in __import__("scalekit_local.coverage", fromlist=["AREAS"]).AREAS for s in area.services}
    wrong = []
    try:
        for service in sorted(emulated):
            full = data["full"][service]
            descriptor = _service_descriptor(full)
            for method in descriptor.methods:
                request = message_factory.GetMessageClass(method.input_type)()
                response = message_factory.GetMessageClass(method.output_type)
                call = channel.unary_unary(f"/{full}/{method.name}", request_serializer=type(request).SerializeToString,
                                           response_deserializer=response.FromString)
                try:
                    call(request, metadata=[("authorization", f"Bearer {token}")], timeout=10)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as exc:
                    code = exc.code()
                claimed = next((r.implemented for r in data["rows"][service] if r.rpc == method.name), False)
                if (code == grpc.StatusCode.UNIMPLEMENTED) == claimed:
                    wrong.append(f"{service}/{method.name}: claimed {'implemented' if claimed else 'missing'}, got {code.name}")
    finally:
        channel.close()
    assert not wrong, wrong


def _service_descriptor(full_name: str):
    from google.protobuf import descriptor_pool

    import scalekit.v1  # noqa: F401 - registers nothing by itself; coverage.collect() imported every module
    return descriptor_pool.Default().FindServiceByName(full_name)


def test_the_generator_runs_as_a_script_and_checks(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "scalekit_local" / "coverage.py"), "--check"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\*\*\d+ of \d+ RPCs", (REPO / "SUPPORTED.md").read_text())
