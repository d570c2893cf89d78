"""The launcher the path suites use: build once, start with the right environment, stop the whole group."""
from __future__ import annotations

import json
import os
import shutil
import urllib.request

import pytest

from . import launcher

FIXTURE = launcher.Template("fixture-app", launcher.REPO_ROOT / "tests" / "template_suites" / "fixture_app", {})


@pytest.fixture
def fixture_app(tmp_path):
    folder = tmp_path / "fullstack-fixture"
    shutil.copytree(FIXTURE.dir, folder)
    return launcher.load(folder)


def test_build_start_and_stop(fixture_app, local_scalekit, tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "STAMPS_DIR", tmp_path / "stamps")
    launcher.build(fixture_app, tmp_path)
    assert (fixture_app.dir / "installed.txt").read_text() == "ok"
    port = launcher.free_port()
    server = launcher.start(fixture_app, local_scalekit, port, tmp_path)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as resp:
            seen = json.loads(resp.read())
        assert seen["env"] == {"PORT": str(port), "APP_URL": f"http://localhost:{port}",
                               "SCALEKIT_ENVIRONMENT_URL": local_scalekit.url,
                               "SCALEKIT_CLIENT_ID": local_scalekit.client_id,
                               "NODE_EXTRA_CA_CERTS": local_scalekit.ca_cert, "GREETING": "hello"}
        assert seen["secret_length"] == 64
    finally:
        assert server.stop() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(seen["pid"], 0)  # the server itself, not only the shell, is gone


def test_registrations_name_the_template_urls(fixture_app):
    assert launcher.registrations(fixture_app, 4123) == (
        "--redirect-uri", "http://localhost:4123/auth/callback", "--post-logout-redirect-uri", "http://localhost:4123/")


def test_a_webhook_route_registers_a_webhook_url(fixture_app):
    """Modular-SSO templates name routes.webhook; the local environment then signs deliveries to it."""
    fixture_app.manifest["routes"] = {**fixture_app.manifest["routes"], "webhook": "/webhooks/scalekit"}
    assert launcher.registrations(fixture_app, 4123)[-2:] == ("--webhook-url", "http://localhost:4123/webhooks/scalekit")


def test_failing_install_and_start_say_what_happened(fixture_app, local_scalekit, tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "STAMPS_DIR", tmp_path / "stamps")
    fixture_app.manifest["install"] = ["echo building; exit 7"]
    with pytest.raises(RuntimeError, match=r"(?s)exited 7.*building"):
        launcher.build(fixture_app, tmp_path)
    fixture_app.manifest["start"] = "python3 -c 'raise SystemExit(\"no config\")'"
    with pytest.raises(RuntimeError, match=r"(?s)exited with 1 before it was ready.*no config"):
        launcher.start(fixture_app, local_scalekit, launcher.free_port(), tmp_path)
