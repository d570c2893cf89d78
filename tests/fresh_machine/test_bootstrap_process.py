"""A script started with a plain `python` switches to the skill's venv in the same process (os.execv),
so the PID a shell gets from `python scripts/local_scalekit.py &` is the server itself: `kill $!`
stops it and frees its port, with nothing left behind.

The skill copy here is scripts/ alone, and its .venv is made without pip and borrows the repository
venv's packages through a .pth file, with the requirements stamp the bootstrap looks for, so no
PyPI is needed (test_fresh_clone.py fills a real one from PyPI)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from .helpers import REPO, plain_python_path, user_env

sys.path.insert(0, str(REPO / "scripts"))
import _bootstrap  # noqa: E402  (its STAMP and GUARD names)


@pytest.fixture(scope="module")
def skill(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A skill folder whose .venv is ready, and a user's environment whose `python` is not that venv."""
    root = tmp_path_factory.mktemp("bootstrap")
    copy = root / "scalekit-auth"
    shutil.copytree(REPO / "scripts", copy / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    venv = copy / ".venv"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "repo-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    requirements = (copy / "scripts" / "requirements.txt").read_bytes()
    (venv / _bootstrap.STAMP).write_text(hashlib.sha256(requirements).hexdigest() + "\n")
    return copy, user_env(plain_python_path(root / "bin"))


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_running_from(folder: Path) -> list[str]:
    """Command lines of live processes that run a file in `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next((line for line in (proc / "status").read_text().splitlines() if line.startswith("State:")), "")
        except OSError:
            continue
        if str(folder) in cmdline and "zombie" not in state:
            found.append(f"{proc.name}: {cmdline}")
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["kill", "kill-9"])
def test_killing_the_started_pid_stops_the_local_environment(skill, sig):
    copy, env = skill
    assert not _bootstrap._same(sys.prefix, copy / ".venv")
    # What `python scripts/local_scalekit.py --port 0 --json &` starts; proc.pid is the shell's $!.
    proc = subprocess.Popen(["python", "scripts/local_scalekit.py", "--port", "0", "--json"], cwd=copy, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = {}
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        started = json.loads(line)
        # The server runs as the PID the shell got, in the skill's venv: no parent waiting on a child.
        assert started["pid"] == proc.pid
        with open(f"/proc/{proc.pid}/environ", "rb") as fh:  # the bootstrap marks the run it switched
            assert f"{_bootstrap.GUARD}={copy / '.venv'}".encode() in fh.read().split(b"\0")
        port = started["port"]
        assert port_is_open(port)
        os.kill(proc.pid, sig)
        code = proc.wait(timeout=20)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), proc.stderr.read()
        deadline = time.monotonic() + 5
        while port_is_open(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not port_is_open(port), f"port {port} still answers after kill {proc.pid}"
        assert processes_running_from(copy) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if started.get("pid", proc.pid) != proc.pid:  # a bootstrap that re-runs as a child leaves it behind
            os.kill(started["pid"], signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()
