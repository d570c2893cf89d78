"""scripts/validate_env.py --path mcp: an MCP server needs SCALEKIT_ENVIRONMENT_URL,
SCALEKIT_RESOURCE_ID and APP_URL, and a client id and secret only for custom auth."""
from __future__ import annotations

from script_helpers import assert_failed, assert_no_leaks, base_env, result, run_many

SECRET = "test_5xKq8vRz2NwT7bLm4PcY9hJd3FgS6aUeQ"
MCP_SERVER = {"SCALEKIT_ENVIRONMENT_URL": "https://acme-dev.scalekit.dev", "SCALEKIT_RESOURCE_ID": "res_70000000000004001",
              "APP_URL": "http://localhost:8000"}
CUSTOM_AUTH = {**MCP_SERVER, "SCALEKIT_CONNECTION_ID": "conn_90935731878763860",
               "SCALEKIT_CLIENT_ID": "skc_58327480989122566", "SCALEKIT_CLIENT_SECRET": SECRET}


def env(variables: dict) -> dict:
    clean = {k: v for k, v in base_env().items() if k != "APP_URL"}
    return {**clean, **variables}


def test_mcp_path(workdir):
    cases = {
        "server": (("--path", "mcp", "--json"), MCP_SERVER),
        "as_an_app": (("--json",), MCP_SERVER),
        "custom_auth": (("--path", "mcp", "--json"), CUSTOM_AUTH),
        "custom_auth_without_secret": (("--path", "mcp"), {**CUSTOM_AUTH, "SCALEKIT_CLIENT_SECRET": ""}),
        "no_resource": (("--path", "mcp"), {**MCP_SERVER, "SCALEKIT_RESOURCE_ID": ""}),
        "placeholder_resource": (("--path", "mcp"), {**MCP_SERVER, "SCALEKIT_RESOURCE_ID": "res_..."}),
        "no_app_url": (("--path", "mcp"), {**MCP_SERVER, "APP_URL": ""}),
        "app_url_with_path": (("--path", "mcp"), {**MCP_SERVER, "APP_URL": "https://mcp.example.com/mcp"}),
        "app_url_http": (("--path", "mcp"), {**MCP_SERVER, "APP_URL": "http://mcp.example.com"}),
        "bad_connection": (("--path", "mcp"), {**CUSTOM_AUTH, "SCALEKIT_CONNECTION_ID": "org_1"}),
    }
    runs = run_many({k: ("validate_env.py", args, env(v), workdir) for k, (args, v) in cases.items()})

    ok = result(runs, "server")
    assert ok.code == 0, ok
    statuses = {c["name"]: c["status"] for c in ok.doc["checks"]}
    assert statuses == {"env file": "skip", "SCALEKIT_ENVIRONMENT_URL": "pass", "SCALEKIT_RESOURCE_ID": "pass",
                        "APP_URL": "pass", "SCALEKIT_CONNECTION_ID": "skip", "SCALEKIT_CLIENT_ID": "skip",
                        "SCALEKIT_CLIENT_SECRET": "skip"}
    app_url = next(c for c in ok.doc["checks"] if c["name"] == "APP_URL")
    assert app_url["data"]["mcp_endpoint"] == "http://localhost:8000/mcp"
    # Without --path mcp the same, correct, MCP-server settings are an incomplete app's.
    assert_failed(result(runs, "as_an_app"), 2, "SCALEKIT_CLIENT_ID")

    custom = result(runs, "custom_auth")
    assert custom.code == 0, custom
    assert {c["name"]: c["status"] for c in custom.doc["checks"]}["SCALEKIT_CLIENT_SECRET"] == "pass"
    assert_no_leaks(custom, SECRET)
    assert_failed(result(runs, "custom_auth_without_secret"), 2, "SCALEKIT_CLIENT_SECRET")

    assert_failed(result(runs, "no_resource"), 2, "SCALEKIT_RESOURCE_ID", "res_")
    assert_failed(result(runs, "placeholder_resource"), 2, "SCALEKIT_RESOURCE_ID")
    assert_failed(result(runs, "no_app_url"), 2, "APP_URL", "not set")
    assert_failed(result(runs, "app_url_with_path"), 2, "APP_URL", "without a path")
    assert_failed(result(runs, "app_url_http"), 2, "APP_URL", "https://")
    assert_failed(result(runs, "bad_connection"), 2, "SCALEKIT_CONNECTION_ID", "conn_")
