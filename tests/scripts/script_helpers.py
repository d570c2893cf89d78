"""Helpers for running the validation scripts as users and agents do: as subprocesses, with stdin
closed, from a folder without a .env, and with the SCALEKIT_* variables and trust settings given
explicitly (the machine exports REQUESTS_CA_BUNDLE/SSL_CERT_FILE for the system bundle)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import jsonschema

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
SCHEMA = json.loads((SCRIPTS / "schemas" / "report.schema.json").read_text(encoding="utf-8"))
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.")
REFRESH_TOKEN_RE = re.compile(r"rt_[A-Za-z0-9_-]{20,}")  # the local environment's refresh tokens


@dataclass
class Run:
    args: list[str]
    code: int
    stdout: str
    stderr: str
    elapsed: float
    doc: dict | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    def __str__(self) -> str:  # shown when an assertion fails
        return f"$ {' '.join(self.args)}\nexit {self.code} after {self.elapsed:.1f}s\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def base_env(**variables: str) -> dict[str, str]:
    """The process environment without any SCALEKIT_* variable, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALEKIT_")}
    env.update(variables)
    return env


def run_script(script: str, *args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> Run:
    argv = [sys.executable, str(SCRIPTS / script), *args]
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)
    run = Run(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start, None)
    assert "Traceback" not in run.output, run
    if "--json" in args and "--help" not in args:
        run.doc = json.loads(proc.stdout)  # stdout is exactly one JSON document
        jsonschema.validate(run.doc, SCHEMA)
        assert run.doc["exit_code"] == run.code, run
    return run


def run_many(jobs: dict[str, tuple], workers: int = 6) -> dict[str, Run | BaseException]:
    """Run independent script invocations in parallel: {id: (script, args, env, cwd)} -> {id: Run}.
    A job whose run_script assertion failed maps to that exception; `result()` re-raises it."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(run_script, script, *args, env=env, cwd=cwd)
                   for key, (script, args, env, cwd) in jobs.items()}
        return {key: future.exception() or future.result() for key, future in futures.items()}


def result(results: dict, key: str) -> Run:
    value = results[key]
    if isinstance(value, BaseException):
        raise value
    return value


def assert_failed(run: Run, code: int, *fragments: str) -> None:
    """Exit code as expected, and exactly one one-line error message naming the problem."""
    assert run.code == code, run
    assert len(run.error_lines) == 1, run
    for fragment in fragments:
        assert fragment.lower() in run.error_lines[0].lower(), run


def assert_no_leaks(run: Run, *secrets: str) -> None:
    for secret in secrets:
        assert secret and secret not in run.output, f"a secret was printed\n{run}"
    assert not JWT_RE.search(run.output), f"a raw token was printed\n{run}"
    assert not REFRESH_TOKEN_RE.search(run.output), f"a refresh token was printed\n{run}"


