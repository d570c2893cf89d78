"""What the fresh-machine tests share: a clean copy of the repository (what `git clone` gives, with
no venv, node_modules or generated files), a PATH whose `python` is a plain Python 3.11, a way to run
a command without network, and the commands a page prints."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Never in a clone: installed or generated locally, whatever .gitignore says about them.
NOT_CLONED = {".git", ".venv", "node_modules", "dist", "site", ".local-scalekit", ".stamps", ".pytest_cache"}
UNSHARE = shutil.which("unshare")


def clean_copy(dest: Path) -> Path:
    """The repository's tracked and new (not ignored) files copied to `dest`, symlinks kept."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if rel.split("/", 1)[0] in NOT_CLONED:
            continue
        source, target = REPO / rel, dest / rel
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return dest


def plain_python_path(bin_dir: Path) -> str:
    """A PATH on which `python` and `python3` are this machine's Python 3.11 itself, not a venv."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    for name in ("python", "python3"):
        (bin_dir / name).symlink_to(base)
    return f"{bin_dir}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin"


def user_env(path: str, **extra: str) -> dict[str, str]:
    """The machine's environment as a user's shell has it: no venv, no SCALEKIT_* settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SCALEKIT_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=path, **extra)
    return env


def offline_available() -> bool:
    """`unshare -rn` gives a network namespace with nothing but a loopback interface."""
    if not UNSHARE:
        return False
    return subprocess.run([UNSHARE, "-rn", "true"], capture_output=True).returncode == 0


def offline(script: str) -> list[str]:
    """argv that runs a bash script without network (and with its own free ports)."""
    return [UNSHARE, "-rn", "bash", "-ec", "ip link set lo up\n" + script]


def section(markdown: str, heading: str) -> str:
    """The text under `## heading`, up to the next heading of that level."""
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start:end if end > 0 else None]


def console_commands(markdown: str) -> list[str]:
    """The `$ ` lines of the console fences in `markdown`, without the prompt or a trailing comment."""
    commands, in_console = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_console = line.startswith("```console") and not in_console
            continue
        if in_console and line.startswith("$ "):
            commands.append(re.sub(r"\s+#\s.*$", "", line[2:]).strip())
    return commands
