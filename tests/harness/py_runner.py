"""Parent side of the Python fence worker (see py_worker.py)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .scan import Fence

WORKER = Path(__file__).with_name("py_worker.py")


class PythonWorker:
    """One long-lived child per environment: startup (pytest config, SDK import) is paid once."""

    def __init__(self, update: bool = False) -> None:
        self.update = update
        self.proc: subprocess.Popen | None = None
        self.env: dict | None = None
        self.log = tempfile.TemporaryFile(mode="w+")
        self.buffer = b""

    def _start(self, env: dict) -> None:  # env: the worker's whole environment
        self.close()
        self.log.seek(0)
        self.log.truncate()
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), *(["--update-examples"] if self.update else [])],
            cwd=tempfile.gettempdir(),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,
        )
        self.env = env
        self.buffer = b""
        ready = self._read(time.monotonic() + 120)
        if not ready or not ready.get("ready"):
            raise RuntimeError("the Python fence worker did not start:\n" + self.log_tail())

    def _read(self, deadline: float) -> dict | None:
        assert self.proc and self.proc.stdout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None  # the worker died
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, fence: Fence, env: dict, timeout: float, matrix: dict | None = None) -> dict:
        """matrix: {"function": name, "tokens": [{"name", "token"}]} to run the fence's validator on."""
        # Restart only when the Scalekit settings change; os.environ itself changes per test
        # (PYTEST_CURRENT_TEST), which must not cost a new worker.
        key = {k: v for k, v in env.items() if k != "PYTEST_CURRENT_TEST"}
        if self.proc is None or self.proc.poll() is not None or key != self.env:
            self._start(key)
        request = {
            "id": fence.id,
            "source": fence.body,
            "path": fence.rel,
            "line": fence.line,
            "info": fence.info,
            "indent": len(fence.indent),
            "matrix": matrix,
        }
        assert self.proc and self.proc.stdin
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        answer = self._read(time.monotonic() + timeout)
        if answer is None:
            alive = self.proc.poll() is None
            self.close()  # the next fence gets a fresh worker
            if alive:
                return {"ok": False, "stage": "timeout", "message": f"did not finish within {timeout:g} s"}
            return {"ok": False, "stage": "run", "message": "the Python process died:\n" + self.log_tail()}
        return answer

    def log_tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return "\n".join(self.log.read().splitlines()[-30:])

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream:
                    stream.close()
            self.proc = None
