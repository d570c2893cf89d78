"""Running a fence's process with a deadline, and what counts as its failure."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Completed:
    returncode: int | None  # None when it timed out
    stdout: str
    stderr: str


def run(cmd: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float) -> Completed:
    """Run cmd in its own process group, so a timeout also ends the children it started."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return Completed(proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return Completed(None, out, err)


def tail(text: str, lines: int = 40) -> str:
    parts = text.rstrip().splitlines()
    cut = parts[-lines:]
    return ("...\n" if len(parts) > lines else "") + "\n".join(cut)
