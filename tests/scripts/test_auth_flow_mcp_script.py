"""scripts/test_auth_flow.py --path mcp: the MCP login against the local environment's seeded
resource (metadata, dynamic client registration, PKCE, resource, headless login, token exchange,
audience check, refresh), and how it fails. The runs start together in parallel."""
from __future__ import annotations

import pytest
import yaml
from script_helpers import SCRIPTS, assert_failed, assert_no_leaks, base_env, result, run_many

RESOURCE = "res_70000000000004001"
MCP_URL = "http://localhost:8000/mcp"
STEPS = ("mcp metadata", "client registration", "authorization url", "login", "code exchange", "access token",
         "refresh", "refreshed access token")


def _seed(tmp_path, change, add_resource: dict | None = None) -> str:
    seed = yaml.safe_load((SCRIPTS / "scalekit_local" / "default_seed.yaml").read_text(encoding="utf-8"))
    change(seed["resources"][0])
    if add_resource:
        seed["resources"].append(add_resource)
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed, sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("mcp-flow")
    no_dcr = _seed(tmp_path_factory.mktemp("no-dcr"), lambda r: r.update(dynamic_client_registration=False))
    custom = _seed(tmp_path_factory.mktemp("custom"), lambda r: r.update(
        custom_auth={"login_url": "http://127.0.0.1:9/login", "connection_id": "conn_70000000000005009"}))
    two = _seed(tmp_path_factory.mktemp("two"), lambda r: None, add_resource={
        "id": "res_70000000000004002", "name": "Second", "urls": ["http://localhost:8001/mcp"], "scopes": ["a:read"]})
    base = ("--local", "--path", "mcp", "--resource-id", RESOURCE)
    jobs = {
        "ok": ("--local", "--path", "mcp", "--json"),  # the seed's only resource is the default
        "two_resources": ("--local", "--path", "mcp", "--seed", two),
        "remote_without_resource": ("--path", "mcp", "--mcp-url", MCP_URL),
        "ok_text": base + ("--mcp-url", "http://127.0.0.1:8000/mcp"),
        "wrong_mcp_url": base + ("--mcp-url", "http://127.0.0.1:8001/mcp", "--json"),
        "no_dcr": base + ("--seed", no_dcr, "--json"),
        "custom_auth": base + ("--seed", custom, "--json"),
        "not_in_seed": ("--local", "--path", "mcp", "--resource-id", "res_70000000000009002", "--seed", no_dcr),
        "remote_without_url": ("--path", "mcp", "--resource-id", RESOURCE),
        "mcp_url_without_mcp": ("--local", "--mcp-url", MCP_URL),
    }
    return run_many({k: ("test_auth_flow.py", v, base_env(), cwd) for k, v in jobs.items()})


def statuses(run) -> dict[str, str]:
    return {c["name"]: c["status"] for c in run.doc["checks"]}


def data(run, name: str) -> dict:
    return next(c for c in run.doc["checks"] if c["name"] == name)["data"]


def test_mcp_login_passes_every_step(runs):
    run = result(runs, "ok")
    assert run.code == 0, run
    assert all(statuses(run).get(step) == "pass" for step in STEPS), run
    meta = data(run, "mcp metadata")["metadata"]
    assert meta["issuer"] == f"{run.doc['environment_url']}/resources/{RESOURCE}"
    assert data(run, "client registration")["client_id"].startswith("m2m_")
    url = data(run, "authorization url")["url"]
    assert "code_challenge_method=S256" in url and "resource=http%3A%2F%2Flocalhost%3A8000%2Fmcp" in url
    claims = data(run, "access token")["claims"]
    assert claims["aud"] == [RESOURCE, MCP_URL] and claims["iss"] == run.doc["environment_url"]
    assert "todo:read" in claims["scope"].split() and "scopes" not in claims
    assert data(run, "code exchange")["refresh_token"] is True
    assert_no_leaks(run)


def test_text_report_with_explicit_mcp_url(runs):
    run = result(runs, "ok_text")
    assert run.code == 0, run
    assert run.stdout.rstrip().splitlines()[-1].startswith("OK:"), run
    assert any(line.startswith("PASS  access token") and "http://127.0.0.1:8000/mcp" in line
               for line in run.stdout.splitlines()), run


@pytest.mark.parametrize("name, code, fragments", [
    ("wrong_mcp_url", 3, ("invalid_target", "is not a registered URL")),
    ("no_dcr", 2, ("dynamic client registration",)),
    ("custom_auth", 5, ("did not log in headlessly", "127.0.0.1:9/login")),
    ("not_in_seed", 5, ("is not an MCP resource",)),
    ("remote_without_url", 2, ("--path mcp needs --mcp-url",)),
    ("two_resources", 2, ("the seed has 2 MCP resources", RESOURCE, "res_70000000000004002", "--resource-id")),
    ("remote_without_resource", 2, ("--path mcp needs --resource-id",)),
    ("mcp_url_without_mcp", 2, ("--mcp-url needs --path mcp",)),
])
def test_mcp_failures(runs, name, code, fragments):
    run = result(runs, name)
    assert_failed(run, code, *fragments)
    assert_no_leaks(run)
