"""SKILL.md's "Check your work" on a fresh clone: no venv, `python` a plain Python 3.11, each command
run exactly as printed from the skill folder, with `path/to/your-app/.env` naming a real app's file.
The first one creates the skill's .venv from scripts/requirements.txt (network to PyPI, once for this
module); the others reuse it.

validate_env.py and test_connection.py check the session's local environment through that app's
.env, as written by local_scalekit.py --env-file, on a machine that exports its own CA variables.
local_scalekit.py runs as printed, on its default port 8443, inside a network namespace of its own, so
that port is always free there, and writes the app's .env; test_connection.py then reads it there.
"""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from .helpers import REPO, clean_copy, offline, offline_available, plain_python_path, section, user_env

pytestmark = pytest.mark.slow  # a venv filled from PyPI, then every script once
INSTALL_LINE = "scalekit-auth: installing the scripts' Python packages"
APP_ENV_FILE = "path/to/your-app/.env"  # how SKILL.md names the app's settings file


def check_your_work_commands() -> list[str]:
    text = section((REPO / "SKILL.md").read_text(), "Check your work")
    return [c for c in re.findall(r"^- `(python scripts/[^`]+)`", text, re.M)]


@pytest.fixture(scope="module")
def app_env_file(clone, local_scalekit) -> str:
    """The app's .env beside the clone, holding the session's local environment as --env-file writes it."""
    copy, _ = clone
    env_file = copy.parent / "my-app" / ".env"
    env_file.parent.mkdir(exist_ok=True)
    env_file.write_text("".join(f"{k}={v}\n" for k, v in local_scalekit.env_vars().items()))
    return str(env_file)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh")
    copy = clean_copy(root / "scalekit-auth")
    assert not (copy / ".venv").exists()
    return copy, plain_python_path(root / "bin")


def run(clone, command: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    copy, _ = clone
    done = subprocess.run(["bash", "-c", command], cwd=copy, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)
    assert "Traceback" not in done.stdout + done.stderr, f"$ {command}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def first_run(clone, app_env_file):
    """The first command as printed: it bootstraps the venv, then checks the app's settings file."""
    _, path = clone
    command = check_your_work_commands()[0]
    start = time.monotonic()
    done = run(clone, command.replace(APP_ENV_FILE, app_env_file), user_env(path))
    return command, done, time.monotonic() - start


def test_skill_md_lists_the_six_scripts_each_naming_the_apps_env_file():
    commands = check_your_work_commands()
    scripts = [c.split()[1] for c in commands]
    assert scripts == ["scripts/validate_env.py", "scripts/test_connection.py", "scripts/test_auth_flow.py",
                       "scripts/local_scalekit.py", "scripts/test_web_app.py", "scripts/test_mcp_server.py"], scripts
    assert [APP_ENV_FILE in c for c in commands] == [True, True, False, True, True, True], commands


def test_first_command_bootstraps_the_venv_with_one_line(clone, first_run):
    copy, _ = clone
    command, done, seconds = first_run
    assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"
    assert done.stderr.splitlines()[0].startswith(INSTALL_LINE), done.stderr
    assert sum(INSTALL_LINE in line for line in done.stderr.splitlines()) == 1, done.stderr
    assert (copy / ".venv" / "bin" / "python").exists()
    assert done.stdout.rstrip().splitlines()[-1].startswith("OK:"), done.stdout
    print(f"first run, venv included: {seconds:.0f} s")


@pytest.mark.parametrize("index", [1, 2])
def test_network_commands_pass_as_printed(clone, first_run, app_env_file, index):
    _, path = clone
    command = check_your_work_commands()[index]
    done = run(clone, command.replace(APP_ENV_FILE, app_env_file), user_env(path))
    assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"
    assert INSTALL_LINE not in done.stderr  # the venv is made once
    assert done.stdout.rstrip().splitlines()[-1].startswith("OK:"), done.stdout


@pytest.mark.skipif(not offline_available(), reason="needs `unshare -rn` for a network namespace with a free port 8443")
def test_local_scalekit_starts_as_printed_and_its_exports_work(clone, first_run):
    _, path = clone
    command = check_your_work_commands()[3]
    assert command == f"python scripts/local_scalekit.py --env-file {APP_ENV_FILE}"
    copy, _ = clone
    app = copy.parent / "offline-app"
    app.mkdir()
    (app / ".env").write_text("# my app\nPORT=3000\n")
    script = f"""
{command.replace(APP_ENV_FILE, str(app / ".env"))} > exports.txt 2> server.log &
server=$!
for _ in $(seq 300); do grep -q '^export CURL_CA_BUNDLE=' exports.txt && break; sleep 0.1; done
cat exports.txt
python scripts/test_connection.py --env-file {app / ".env"}
kill -TERM $server
wait $server && echo "server exit 0"
"""
    done = subprocess.run(offline(script), cwd=copy, env=user_env(path), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    log = (copy / "server.log").read_text()
    report = f"{done.stdout}\n{done.stderr}\n--- server\n{log}"
    assert done.returncode == 0, report
    assert "export SCALEKIT_ENVIRONMENT_URL=https://127.0.0.1:8443" in done.stdout, report
    assert "OK:" in done.stdout and "server exit 0" in done.stdout, report
    assert (app / ".env").read_text().startswith("# my app\nPORT=3000\n"), "the app's own lines must stay"
    assert "Traceback" not in report


def test_a_changed_requirements_file_updates_the_venv_once(clone, first_run, local_scalekit):
    copy, path = clone
    requirements = copy / "scripts" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# changed by a git pull\n")
    env = user_env(path, **local_scalekit.env_vars())
    updated = run(clone, "python scripts/validate_env.py", env)
    assert updated.returncode == 0, updated.stderr
    assert updated.stderr.startswith("scalekit-auth: updating the scripts' Python packages"), updated.stderr
    again = run(clone, "python scripts/validate_env.py", env)
    assert again.returncode == 0 and "scalekit-auth:" not in again.stderr, again.stderr


@pytest.mark.skipif(not offline_available(), reason="needs `unshare -rn` to take the network away")
def test_bootstrap_without_pypi_fails_in_one_line(tmp_path):
    copy = clean_copy(tmp_path / "scalekit-auth")
    path = plain_python_path(tmp_path / "bin")
    done = subprocess.run(offline("python scripts/validate_env.py"), cwd=copy, stdin=subprocess.DEVNULL,
                          env=user_env(path, PIP_RETRIES="0", PIP_DEFAULT_TIMEOUT="5", PIP_FIND_LINKS=""),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 4, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(INSTALL_LINE) and len(lines) == 2, done.stderr
    assert lines[1].startswith("error: installing scripts/requirements.txt failed (is PyPI reachable?)"), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
