"""scripts/local_scalekit.py as a user runs it."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "scripts" / "local_scalekit.py"
DEFAULT_SEED = REPO / "scripts" / "scalekit_local" / "default_seed.yaml"
APP_VARS = ["SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET"]
TRUST_VARS = ["REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE",
              "CURL_CA_BUNDLE"]
EXPORTED = APP_VARS + TRUST_VARS


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CLI), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def start_cli(*args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start the CLI and read its export lines from stdout (three in plaintext mode, else all)."""
    proc = subprocess.Popen([sys.executable, str(CLI), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    exports: dict[str, str] = {}
    while len(exports) < (len(APP_VARS) if "--plaintext" in args else len(EXPORTED)):
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError("no export lines: " + proc.stderr.read())
        assert line.startswith("export "), line
        key, value = line[len("export "):].rstrip("\n").split("=", 1)
        exports[key] = value
    return proc, exports


def test_help_lists_the_default_seed():
    out = run_cli("--help")
    assert out.returncode == 0
    seed = yaml.safe_load(DEFAULT_SEED.read_text())
    for user in seed["users"]:
        assert user["email"] in out.stdout and user["password"] in out.stdout and user["id"] in out.stdout
    for org in seed["organizations"]:
        assert org["id"] in out.stdout and org["display_name"] in out.stdout
    for conn in seed["connections"]:
        assert conn["id"] in out.stdout and all(d in out.stdout for d in conn["domains"])
    for provider in seed["environment"]["providers"]:
        assert provider["provider"] in out.stdout
    assert seed["clients"][0]["id"] in out.stdout
    assert all(client["secret"] not in out.stdout for client in seed["clients"])  # secrets only in exports
    for option in ("--port", "--seed", "--auto-login", "--plaintext", "--env-file", "--data-dir"):
        assert option in out.stdout


def test_port_zero_prints_exports_env_file_and_sigterm_stops_cleanly(tmp_path):
    env_file = tmp_path / "local.env"
    proc, exports = start_cli("--port", "0", "--data-dir", str(tmp_path / "data"), "--env-file", str(env_file))
    try:
        assert list(exports)[:len(EXPORTED)] == EXPORTED
        url = exports["SCALEKIT_ENVIRONMENT_URL"]
        assert url.startswith("https://127.0.0.1:") and not url.endswith(":0")
        assert exports["REQUESTS_CA_BUNDLE"] == exports["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] == exports["SSL_CERT_FILE"]
        bundle = Path(exports["REQUESTS_CA_BUNDLE"]).read_text()
        assert Path(exports["NODE_EXTRA_CA_CERTS"]).read_text() in bundle
        assert bundle.count("BEGIN CERTIFICATE") > 1  # system roots kept
        resp = httpx.get(url + "/.well-known/openid-configuration", verify=exports["REQUESTS_CA_BUNDLE"])
        assert resp.json()["issuer"] == url

        lines = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line and not line.startswith("#"))
        assert {k: lines[k] for k in EXPORTED} == {k: exports[k] for k in EXPORTED}
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(10)
    assert rc == 0
    assert "Traceback" not in proc.stderr.read()
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_sigint_stops_cleanly_and_keys_survive_restart_on_localhost(tmp_path):
    data = str(tmp_path / "data")
    proc, exports = start_cli("--port", "0", "--data-dir", data, "--plaintext")
    url = exports["SCALEKIT_ENVIRONMENT_URL"]
    assert url.startswith("http://")
    keys = httpx.get(url + "/keys").json()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    stdout, stderr = proc.communicate()
    # http:// needs no CA: no trust variable is printed, nor a Node CA hint.
    assert not any(name in stdout + stderr for name in TRUST_VARS), stdout + stderr
    proc, exports = start_cli("--port", "0", "--data-dir", data, "--host", "localhost")
    try:
        assert exports["SCALEKIT_ENVIRONMENT_URL"].startswith("https://localhost:")
        assert httpx.get(exports["SCALEKIT_ENVIRONMENT_URL"] + "/keys", verify=exports["REQUESTS_CA_BUNDLE"]).json() == keys
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_bad_seed_exits_2_with_one_line_naming_the_key(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text("version: 1\nclients:\n  - {id: skc_123456, secret: s3cret-s3cret, type: environment, colour: red}\n")
    out = run_cli("--port", "0", "--seed", str(seed), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 2
    message = out.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith("error: ") and "clients[0].colour: unknown key" in message
    assert out.stdout == ""


def test_missing_seed_file_and_unknown_auto_login_user(tmp_path):
    out = run_cli("--port", "0", "--seed", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "seed file not found" in out.stderr
    out = run_cli("--port", "0", "--auto-login", "mallory@acme.test", "--data-dir", str(tmp_path))
    assert out.returncode == 2 and "mallory@acme.test" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_busy_port_exits_2_like_any_configuration_problem(tmp_path):
    # 3 means credentials in every script; a port in use is configuration (2), as in test_auth_flow.py.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        out = run_cli("--port", str(busy.getsockname()[1]), "--data-dir", str(tmp_path))
    assert out.returncode == 2
    assert "cannot listen" in out.stderr and "Traceback" not in out.stderr


def test_env_file_merges_into_an_existing_file(tmp_path):
    """Only its own keys change: in place (an `export ` prefix kept, duplicates dropped), the rest
    appended; other lines, comments and the file's mode stay."""
    env_file = tmp_path / ".env"
    before = ("# my app\nAPP_NAME=demo\nexport SCALEKIT_CLIENT_ID=skc_old\n\nDATABASE_URL=\"postgres://x y\"\n"
              "SCALEKIT_CLIENT_ID=skc_duplicate\n# SSL_CERT_FILE=/commented/out\nPORT=3000")
    env_file.write_text(before)
    env_file.chmod(0o640)
    proc, exports = start_cli("--port", "0", "--data-dir", str(tmp_path / "data"), "--env-file", str(env_file))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    lines = env_file.read_text().splitlines()
    assert lines[:7] == ["# my app", "APP_NAME=demo", f"export SCALEKIT_CLIENT_ID={exports['SCALEKIT_CLIENT_ID']}", "",
                         'DATABASE_URL="postgres://x y"', "# SSL_CERT_FILE=/commented/out", "PORT=3000"], lines
    written = dict(line.split("=", 1) for line in lines[7:] if line and not line.startswith("#"))
    assert written == {k: v for k, v in exports.items() if k != "SCALEKIT_CLIENT_ID"}
    assert oct(env_file.stat().st_mode & 0o777) == "0o640"
    # A second run replaces its lines again instead of adding more.
    proc, exports = start_cli("--port", "0", "--data-dir", str(tmp_path / "data"), "--env-file", str(env_file))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    again = env_file.read_text().splitlines()
    assert len(again) == len(lines) and f"SCALEKIT_ENVIRONMENT_URL={exports['SCALEKIT_ENVIRONMENT_URL']}" in again


def test_bad_arguments_exit_2():
    assert run_cli("--port", "http").returncode == 2
    assert run_cli("--host", "0.0.0.0").returncode == 2
    out = run_cli("--access-token-ttl", "0", "--port", "0")
    assert out.returncode == 2 and "TTL" in out.stderr


def test_env_file_in_missing_folder_is_a_clear_error(tmp_path):
    out = run_cli("--port", "0", "--data-dir", str(tmp_path / "d"), "--env-file", str(tmp_path / "no" / "such" / ".env"))
    assert out.returncode == 2 and "--env-file" in out.stderr and "Traceback" not in out.stderr


def test_command_line_registers_redirect_uris_and_mcp_servers(local_scalekit_factory):
    """--redirect-uri, --post-logout-redirect-uri and --mcp-resource register what a template on
    another port needs, as adding them in the dashboard does; nothing else is let through."""
    from .helpers import authorize_params, env_client

    callback, after_logout, server = ("http://localhost:4567/auth/callback", "http://localhost:4567/",
                                      "http://localhost:8123/mcp")
    env = local_scalekit_factory(extra_args=("--redirect-uri", callback, "--post-logout-redirect-uri", after_logout,
                                             "--mcp-resource", server, "--mcp-token-issuer", "resource"))
    res_id = env.mcp_resources[server]
    assert res_id.startswith("res_") and env.env_vars()["SCALEKIT_RESOURCE_ID"] == res_id
    with env_client(env) as http:
        ok = http.get("/oauth/authorize", params=authorize_params(env.client_id, redirect_uri=callback))
        assert ok.status_code == 302 and ok.headers["location"].startswith("/ui/login")  # the login page, not an error
        other = http.get("/oauth/authorize", params=authorize_params(env.client_id, redirect_uri="http://localhost:4568/auth/callback"))
        assert other.status_code == 400 and "redirect_uri" in other.text
        metadata = http.get(f"/.well-known/oauth-authorization-server/resources/{res_id}")
        assert metadata.status_code == 200 and metadata.json()["issuer"] == f"{env.url}/resources/{res_id}"
    # the same URL gives the same id on every start, so tokens survive a restart
    again = local_scalekit_factory(fresh=True, extra_args=("--mcp-resource", server))
    assert again.mcp_resources == {server: res_id}


@pytest.mark.parametrize("flag", ["--redirect-uri", "--mcp-resource", "--post-logout-redirect-uri"])
def test_command_line_registrations_refuse_urls_that_are_not_http(flag):
    out = run_cli("--port", "0", flag, "javascript:alert(1)")
    assert out.returncode == 2 and "not an absolute http(s) URL" in out.stderr and "Traceback" not in out.stderr
