"""Build and start the apps under templates/ from their template.json (tests/template_suites/README.md).

    discover(path=None) -> [Template]          every template folder, or those of one path
    build(template, log_dir)                   run its install commands, once per test run
    start(template, local_env, port, log_dir)  -> RunningTemplate (url, port, env, stop(), log_text())

Builds are skipped when a stamp in .stamps/templates/ says the folder's files (those git does not
ignore) are unchanged since the last successful build, so a second local run starts at once; a CI
run on a clean clone builds everything once.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "templates"
SCHEMA_PATH = TEMPLATES_DIR / "template.schema.json"
STAMPS_DIR = REPO_ROOT / ".stamps" / "templates"
INSTALL_TIMEOUT = 900   # seconds for all install commands of one template (npm ci + next build on 2 cores)
START_TIMEOUT = 90      # seconds until the server answers
BUILD_OUTPUT = {".venv", "node_modules", ".next", ".bin", "dist", "__pycache__"}
FOLDER_PREFIX = {"mcp": "mcp", "full-stack": "fullstack", "modular-sso": "sso"}


@dataclass
class Template:
    name: str
    dir: Path
    manifest: dict

    @property
    def path(self) -> str:
        return self.manifest["path"]

    @property
    def language(self) -> str:
        return self.manifest["language"]

    def __str__(self) -> str:
        return self.name


def load(folder: Path) -> Template:
    return Template(folder.name, folder, json.loads((folder / "template.json").read_text(encoding="utf-8")))


def discover(path: str | None = None) -> list[Template]:
    found = [load(p.parent) for p in sorted(TEMPLATES_DIR.glob("*/template.json"))]
    return [t for t in found if path is None or t.path == path]


def names(path: str) -> list[str]:
    """Template names of one path, for pytest.mark.parametrize."""
    return [t.name for t in discover(path)]


# ---- building ------------------------------------------------------------------------------
def _fingerprint(template: Template) -> str:
    """A hash of the folder's files that git does not ignore (tracked or not), but its Markdown: a
    README change needs no new build."""
    listing = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z", "."], cwd=template.dir,
                             capture_output=True)
    if listing.returncode == 0:
        listed = listing.stdout.split(b"\0")
    else:  # a copy outside the repository: every file but build output
        listed = [str(p.relative_to(template.dir)).encode() for p in template.dir.rglob("*")
                  if not BUILD_OUTPUT.intersection(p.relative_to(template.dir).parts)]
    digest = hashlib.sha256()
    for rel in sorted(p for p in listed if p and not p.endswith(b".md")):
        file = template.dir / rel.decode()
        if file.is_file():
            digest.update(rel + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _tool_path() -> str:
    """PATH for installs: the system's first, then the repository's .venv/bin for `uv`."""
    return os.environ.get("PATH", "") + os.pathsep + str(REPO_ROOT / ".venv" / "bin")


_built: set[str] = set()


def build(template: Template, log_dir: Path) -> None:
    """Run the template's install commands (once per process; skipped when the stamp matches)."""
    if str(template.dir) in _built:
        return
    stamp = STAMPS_DIR / template.name
    fingerprint = _fingerprint(template)
    if stamp.exists() and stamp.read_text() == fingerprint:
        _built.add(str(template.dir))
        return
    log_path = log_dir / f"{template.name}-install.log"
    env = {**os.environ, "PATH": _tool_path(), "CI": "1", "NEXT_TELEMETRY_DISABLED": "1"}
    deadline = time.monotonic() + INSTALL_TIMEOUT
    with open(log_path, "wb") as log:
        for command in template.manifest["install"]:
            log.write(f"$ {command}\n".encode())
            log.flush()
            try:
                result = subprocess.run(["bash", "-c", command], cwd=template.dir, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"{template.name}: install timed out at {command!r}\n{_tail(log_path)}") from None
            if result.returncode != 0:
                raise RuntimeError(f"{template.name}: install command {command!r} exited {result.returncode}\n"
                                   f"{_tail(log_path)}")
    STAMPS_DIR.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)
    _built.add(str(template.dir))


# ---- running -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_url(port: int) -> str:
    return f"http://localhost:{port}"


def registrations(template: Template, port: int) -> tuple[str, ...]:
    """The local environment's flags that register this template's URLs, as a developer would in the dashboard."""
    base = app_url(port)
    if template.path == "mcp":
        mcp = template.manifest["mcp"]
        custom = ("--mcp-login-url", base + mcp["custom_auth"]["login"]) if mcp.get("custom_auth") else ()
        return ("--mcp-resource", base + mcp["endpoint"], *custom)
    routes = template.manifest["routes"]
    flags = ("--redirect-uri", base + routes["callback"],
             "--post-logout-redirect-uri", base + routes.get("after_logout", "/"))
    if "webhook" in routes:  # its signing secret reaches the app as SCALEKIT_WEBHOOK_SECRET
        flags += ("--webhook-url", base + routes["webhook"])
    if template.path == "modular-sso":  # its ID tokens carry the connection's subject
        flags += ("--modular-sso",)
    return flags


@dataclass
class RunningTemplate:
    template: Template
    port: int
    env: dict[str, str]
    local: object                     # the LocalScalekitProcess it talks to (tests/conftest.py)
    proc: subprocess.Popen
    log_path: Path
    _log: object = field(repr=False, default=None)

    @property
    def url(self) -> str:
        return app_url(self.port)

    @property
    def manifest(self) -> dict:
        return self.template.manifest

    def log_text(self) -> str:
        if self._log:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode


def template_env(template: Template, local_env, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **local_env.env_vars(), "PORT": str(port), "APP_URL": app_url(port),
           "NEXT_TELEMETRY_DISABLED": "1"}
    env.update(template.manifest.get("env", {}))
    for name in template.manifest.get("secrets", []):
        env[name] = secrets.token_hex(32)
    env.update(extra or {})
    return env


def start(template: Template, local_env, port: int, log_dir: Path, extra_env: dict[str, str] | None = None,
          ) -> RunningTemplate:
    """Start the server in its own process group and wait until it answers."""
    if (template.dir / ".env").exists():  # the templates load it over the environment (override=True)
        raise RuntimeError(f"{template.dir / '.env'} exists: it would override the variables the suite gives "
                           "the template; move it away (copy the template folder to try it by hand)")
    env = template_env(template, local_env, port, extra_env)
    log_path = log_dir / f"{template.name}-{port}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(["bash", "-c", "exec " + template.manifest["start"]], cwd=template.dir, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    running = RunningTemplate(template, port, env, local_env, proc, log_path, log)
    try:
        _wait_ready(running)
    except BaseException:
        running.stop()
        raise
    return running


def _wait_ready(running: RunningTemplate) -> None:
    ready = running.manifest.get("ready")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            raise RuntimeError(f"{running.template.name} exited with {running.proc.returncode} before it was ready:\n"
                               f"{_tail(running.log_path)}")
        try:
            if ready is None:
                with socket.create_connection(("127.0.0.1", running.port), timeout=1):
                    return
            else:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{running.port}{ready}", timeout=5) as resp:
                        status = resp.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                if status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{running.template.name} did not answer on port {running.port} within {START_TIMEOUT} s:\n"
                       f"{_tail(running.log_path)}")


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
