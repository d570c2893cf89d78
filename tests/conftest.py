"""Shared test setup: `scripts/` on sys.path, and the local Scalekit environment as fixtures.

Fixtures (all session-scoped):

    local_scalekit -> LocalScalekitProcess
        The default environment (TLS, default seed, login pages, 300 s tokens), started once as a
        subprocess of scripts/local_scalekit.py on a free port.

    local_scalekit_factory(*, auto_login=None, seed=None, access_token_ttl=None,
                           plaintext=False, fresh=False, faults=(), extra_args=()) -> LocalScalekitProcess
        Starts (or reuses: same options, fresh=False) another instance. All instances share one
        data folder, hence one CA and one signing key, because grpcio reads its trust roots only
        once per process.

LocalScalekitProcess has .url, .port, .client_id, .client_secret, .ca_bundle (path: system roots +
local CA), .ca_cert (path: local CA alone), .env_vars() -> dict with SCALEKIT_ENVIRONMENT_URL,
SCALEKIT_CLIENT_ID, SCALEKIT_CLIENT_SECRET and, over TLS, REQUESTS_CA_BUNDLE, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH,
NODE_EXTRA_CA_CERTS, SSL_CERT_FILE and CURL_CA_BUNDLE (plaintext: .ca_bundle and .ca_cert are None), .stats() -> the
server's request counters, .log_text() -> its stderr, .mcp_resources -> {URL: res_ id} for --mcp-resource, and .stop().

Give a subprocess the environment with `env={**os.environ, **local_scalekit.env_vars()}`. In-process
Python SDK use: set the variables in os.environ before the first ScalekitClient is created.
"""
from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS_DIR = REPO_ROOT / "scripts"
if str(SCRIPTS_DIR) not in sys.path:
    sys.path.insert(0, str(SCRIPTS_DIR))

LOCAL_SCALEKIT_CLI = SCRIPTS_DIR / "local_scalekit.py"
START_TIMEOUT = 30


class LocalScalekitProcess:
    """One running `scripts/local_scalekit.py --port 0 --json` subprocess."""

    def __init__(self, data_dir: Path, log_path: Path, *, auto_login: str | None = None, seed: str | os.PathLike | None = None,
                 access_token_ttl: int | None = None, plaintext: bool = False, faults: tuple[str, ...] = (),
                 extra_args: tuple[str, ...] = ()):
        cmd = [sys.executable, str(LOCAL_SCALEKIT_CLI), "--port", "0", "--json", "--data-dir", str(data_dir)]
        if auto_login:
            cmd += ["--auto-login", auto_login]
        if seed:
            cmd += ["--seed", str(seed)]
        if access_token_ttl:
            cmd += ["--access-token-ttl", str(access_token_ttl)]
        if plaintext:
            cmd.append("--plaintext")
        for spec in faults:
            cmd += ["--fault", spec]
        cmd += list(extra_args)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, cwd=REPO_ROOT)
        line = self._first_line()
        try:
            info = json.loads(line)
        except json.JSONDecodeError:
            self.stop()
            raise RuntimeError(f"local Scalekit environment did not start: {line!r}\n{self.log_text()}") from None
        self.url: str = info["url"]
        self.port: int = info["port"]
        self._env: dict[str, str] = info["env"]
        self.client_id: str = self._env["SCALEKIT_CLIENT_ID"]
        self.client_secret: str = self._env["SCALEKIT_CLIENT_SECRET"]
        # None in plaintext mode, which hands out no trust variables.
        self.ca_bundle: str | None = self._env.get("REQUESTS_CA_BUNDLE")
        self.ca_cert: str | None = self._env.get("NODE_EXTRA_CA_CERTS")
        self.mcp_resources: dict[str, str] = info.get("mcp_resources", {})  # --mcp-resource URL -> res_ id

    def _first_line(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        os.set_blocking(self.proc.stdout.fileno(), False)
        buf = b""
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.read()
            if chunk:
                buf += chunk
                if b"\n" in buf:
                    return buf.split(b"\n", 1)[0].decode()
            elif self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        return buf.decode()

    def env_vars(self) -> dict[str, str]:
        return dict(self._env)

    def stats(self) -> dict[str, int]:
        context = ssl.create_default_context(cafile=self.ca_bundle)
        with urllib.request.urlopen(f"{self.url}/_local/stats", context=context if self.url.startswith("https") else None,
                                    timeout=10) as resp:
            return json.loads(resp.read())

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def local_scalekit_factory(tmp_path_factory):
    """Start extra local environments: factory(auto_login=..., seed=..., access_token_ttl=..., plaintext=..., fresh=...,
    extra_args=(...)): extra_args are more command-line flags, e.g. ("--redirect-uri", url)."""
    data_dir = tmp_path_factory.mktemp("local-scalekit-data")
    logs = tmp_path_factory.mktemp("local-scalekit-logs")
    running: dict[tuple, LocalScalekitProcess] = {}
    extra: list[LocalScalekitProcess] = []

    def start(*, auto_login: str | None = None, seed=None, access_token_ttl: int | None = None,
              plaintext: bool = False, fresh: bool = False, faults: tuple[str, ...] = (),
              extra_args: tuple[str, ...] = ()) -> LocalScalekitProcess:
        key = (auto_login, str(seed) if seed else None, access_token_ttl, plaintext, tuple(faults), tuple(extra_args))
        if not fresh and key in running and running[key].proc.poll() is None:
            return running[key]
        log_path = logs / f"instance-{len(running) + len(extra)}.log"
        instance = LocalScalekitProcess(data_dir, log_path, auto_login=auto_login, seed=seed,
                                        access_token_ttl=access_token_ttl, plaintext=plaintext, faults=tuple(faults),
                                        extra_args=tuple(extra_args))
        if fresh:
            extra.append(instance)
        else:
            running[key] = instance
        return instance

    yield start
    instances = [*running.values(), *extra]
    for instance in instances:  # signal all first, so they shut down in parallel
        if instance.proc.poll() is None:
            instance.proc.send_signal(signal.SIGTERM)
    for instance in instances:
        instance.stop()


@pytest.fixture(scope="session")
def local_scalekit(local_scalekit_factory) -> LocalScalekitProcess:
    """The default local Scalekit environment (TLS, default seed, login pages)."""
    return local_scalekit_factory()
