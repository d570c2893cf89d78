"""A template copied out of the skill and configured the way its README says: its `.env` written by
`local_scalekit.py --env-file`, on a machine that exports CA variables of its own (the system bundle in
REQUESTS_CA_BUNDLE, SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, ...; this one does). The file's CA variables
must win (reference/local-environment.md): Python templates load it with override=True, the Node and Go
READMEs give the one command that sets the CA before the process starts. Then the app validates a real
token, which needs Scalekit's keys over TLS. With the file loaded the default way (exported variables
win), the SDK failed with CERTIFICATE_VERIFY_FAILED at import and the MCP servers refused every token.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests

from . import launcher

pytestmark = pytest.mark.slow  # builds templates

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TRUST = ("REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "SSL_CERT_FILE", "CURL_CA_BUNDLE",
         "NODE_EXTRA_CA_CERTS")
# Which command starts each: the manifest's start command (it reads PORT) for templates that load .env
# themselves; for the others the README's, which is what sets NODE_EXTRA_CA_CERTS or loads the file.
CASES = {"mcp-fastapi": "manifest", "fullstack-fastapi": "manifest", "mcp-express": "readme", "mcp-go": "readme",
         "fullstack-express": "readme"}
BUILT = {"python": (".venv",), "node": ("node_modules", "dist"), "go": (".bin",)}


def machine_env(port: int) -> dict[str, str]:
    """A user's shell: no SCALEKIT_* settings, the system bundle in every CA variable, the app's port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALEKIT_") and k != "APP_URL"}
    env.update({name: SYSTEM_BUNDLE for name in TRUST}, PORT=str(port))
    return env


def copy_template(template: launcher.Template, dest: Path) -> Path:
    """The template's own files, as a user copies the folder, plus links to this run's build output
    (what `npm ci && npm run build`, `go build` or `pip install` would make in the copy)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z", "."], cwd=template.dir,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(template.dir / rel, dest / rel)
    for name in BUILT[template.language]:
        (dest / name).symlink_to(template.dir / name)
    return dest


def readme_start_command(template: launcher.Template) -> str:
    """The README's one command that starts the app with its .env (the line that names .env)."""
    text = (template.dir / "README.md").read_text()
    lines = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("$ ")]
    commands = [c for c in lines if ".env" in c and ("node " in c or "npm start" in c or ".bin/server" in c)]
    assert len(commands) == 1, f"{template.name}/README.md: expected one start command that loads .env, got {commands}"
    return commands[0]


def wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the app did not answer at {url}:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("name", CASES)
def test_a_copied_template_loads_its_env_file_over_exported_ca_variables(name, local_scalekit_factory, tmp_path):
    template = launcher.load(launcher.TEMPLATES_DIR / name)
    launcher.build(template, tmp_path)
    app = copy_template(template, tmp_path / "my-app")
    port = launcher.free_port()
    app_url = launcher.app_url(port)
    (app / ".env").write_text(f"# my app\nAPP_URL={app_url}\n" +
                              "".join(f"{n}={os.urandom(32).hex()}\n" for n in template.manifest.get("secrets", [])))
    local = local_scalekit_factory(fresh=True, extra_args=(*launcher.registrations(template, port),
                                                           "--env-file", str(app / ".env")))
    written = (app / ".env").read_text()
    assert f"REQUESTS_CA_BUNDLE={local.ca_bundle}" in written and written.startswith("# my app\n"), written

    command = template.manifest["start"] if CASES[name] == "manifest" else readme_start_command(template)
    log = tmp_path / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", "-c", command], cwd=app, env=machine_env(port), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}{template.manifest.get('ready', '/')}", proc, log)
        if template.path == "mcp":
            resource = local.mcp_resources[app_url + template.manifest["mcp"]["endpoint"]]
            token = matrix_token(local, {"kind": "mcp", "audience": [resource], "scopes": ["todo:read"]})
            response = requests.post(app_url + template.manifest["mcp"]["endpoint"], timeout=30, json={
                "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"})
        else:
            token = matrix_token(local, {"kind": "user", "audience": [local.client_id]})
            response = requests.get(app_url + template.manifest["routes"]["api"], timeout=30,
                                    headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, (f"a valid token: HTTP {response.status_code} {response.text[:300]}\n"
                                              f"{log.read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
    assert not re.search(r"CERTIFICATE_VERIFY_FAILED|unable to verify the first certificate", log.read_text())


def matrix_token(local, request: dict) -> str:
    response = requests.post(f"{local.url}/_local/token-matrix", json=request, verify=local.ca_bundle, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["valid"]["token"]
