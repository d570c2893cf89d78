"""reference/local-environment.md as a user follows it, on a machine that exports its own CA
variables (as this one does, pointing at the system bundle): `local_scalekit.py --env-file` merges
into an app's .env; the page's Python app (load_dotenv(override=True)) and the page's Node command
then reach the environment over TLS, and the scripts read that same file. Each success has its
control: without the page's one line, the same app fails on TLS.
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .helpers import REPO, section, user_env

PAGE = REPO / "reference" / "local-environment.md"
APPS = Path(__file__).parent / "apps"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TRUST = ("REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "SSL_CERT_FILE", "CURL_CA_BUNDLE",
         "NODE_EXTRA_CA_CERTS")
NODE = shutil.which("node")
ORGANIZATIONS = "organizations: 2"  # the default seed's Acme and Globex


def machine_env() -> dict[str, str]:
    """A user's shell on a machine that exports CA variables of its own (none trusts the local CA)."""
    return user_env(str(Path(sys.executable).parent) + ":/usr/local/bin:/usr/bin:/bin",
                    **{name: SYSTEM_BUNDLE for name in TRUST})


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """An app folder whose .env already has settings of its own, filled by local_scalekit.py --env-file."""
    folder = tmp_path_factory.mktemp("my-app")
    env_file = folder / ".env"
    env_file.write_text("# my app\nAPP_NAME=demo\nPORT=3000\n")
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "local_scalekit.py"), "--port", "0",
                             "--data-dir", str(tmp_path_factory.mktemp("data")), "--env-file", str(env_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=machine_env())
    exports = {}
    for line in proc.stdout:
        key, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
        exports[key] = value
        if key == "CURL_CA_BUNDLE":
            break
    assert "SCALEKIT_ENVIRONMENT_URL" in exports, proc.stderr.read() if proc.poll() is not None else exports
    yield folder, exports
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def run(argv, folder: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=folder, env=machine_env(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=90, **kwargs)


def test_the_env_file_keeps_the_apps_lines_and_gains_the_variables(app):
    folder, exports = app
    lines = (folder / ".env").read_text().splitlines()
    assert lines[:3] == ["# my app", "APP_NAME=demo", "PORT=3000"]
    written = dict(line.split("=", 1) for line in lines[3:] if line and not line.startswith("#"))
    assert written == exports and set(TRUST) <= set(written)


def test_python_app_with_override_reaches_the_environment(app):
    folder, _ = app
    shutil.copy(APPS / "python_app.py", folder / "app.py")
    done = run([sys.executable, "app.py"], folder)
    assert done.returncode == 0 and done.stdout.strip() == ORGANIZATIONS, done.stdout + done.stderr


def test_python_app_without_override_fails_on_tls(app):
    folder, _ = app
    source = (APPS / "python_app.py").read_text()
    assert source.count("load_dotenv(override=True)") == 1
    (folder / "app_default.py").write_text(source.replace("load_dotenv(override=True)", "load_dotenv()"))
    done = run([sys.executable, "app_default.py"], folder)
    assert done.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in done.stderr, done.stdout + done.stderr


def node_command() -> str:
    commands = [c for c in re.findall(r"^\$ (.+)$", section(PAGE.read_text(), "Point a Node app at it"), re.M)]
    assert len(commands) == 1, commands
    return commands[0]


@pytest.mark.slow  # runs the Node SDK, like the other Node SDK suites
@pytest.mark.skipif(NODE is None, reason="needs Node 20+ on PATH")
def test_the_pages_node_command_reaches_the_environment(app):
    folder, _ = app
    command = node_command()
    shutil.copy(APPS / "node_app.mjs", folder / command.split()[-1])
    if not (folder / "node_modules").exists():
        (folder / "node_modules").symlink_to(REPO / "node_modules")  # where @scalekit-sdk/node is installed
    done = run(["bash", "-c", command], folder)
    assert done.returncode == 0 and done.stdout.strip() == ORGANIZATIONS, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.skipif(NODE is None, reason="needs Node 20+ on PATH")
def test_node_env_file_alone_is_too_late_for_the_ca(app):
    folder, _ = app
    command = node_command()
    plain = command[command.index("node "):]  # the same start without the env prefix
    assert plain.startswith("node --env-file=.env ")
    shutil.copy(APPS / "node_app.mjs", folder / plain.split()[-1])
    if not (folder / "node_modules").exists():
        (folder / "node_modules").symlink_to(REPO / "node_modules")
    done = run(["bash", "-c", plain], folder)
    assert done.returncode != 0 and "unable to verify the first certificate" in done.stderr, done.stderr  # as the page says


@pytest.mark.parametrize("argv", [
    ("validate_env.py",),  # .env in the current folder
    ("test_connection.py",),
    ("test_connection.py", "--env-file", "{env_file}", "--json"),  # named, from another folder
])
def test_the_scripts_read_the_same_file(app, argv, tmp_path):
    folder, _ = app
    cwd = tmp_path if "--env-file" in argv else folder
    args = [a.format(env_file=folder / ".env") for a in argv]
    done = run([sys.executable, str(REPO / "scripts" / args[0]), *args[1:]], cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


# ---- the page itself ----------------------------------------------------------------------------


def test_page_fits_its_budget():
    tokens = len(PAGE.read_text()) // 4  # the estimate SKILL.md's budget uses
    assert tokens <= 1500, f"reference/local-environment.md is ~{tokens} tokens, at most 1500"


def test_seeded_facts_on_the_page_are_in_the_default_seed():
    seed_text = (REPO / "scripts" / "scalekit_local" / "default_seed.yaml").read_text()
    seed = yaml.safe_load(seed_text)
    page = PAGE.read_text()
    ids = set(re.findall(r"\b(?:usr|org|conn|skc|res)_\d{17}\b", page))
    assert ids and all(i in seed_text for i in ids), sorted(i for i in ids if i not in seed_text)
    for user in seed["users"]:
        if f"`{user['email']}`" in page:
            assert f"`{user['password']}`" in page, user["email"]
    client = next(c for c in seed["clients"] if c["type"] == "environment")
    for uri in re.findall(r"`(http://localhost:\d+/[^`]*)`", page):
        assert uri in client["redirect_uris"] + client["post_logout_redirect_uris"] + seed["resources"][0]["urls"], uri
