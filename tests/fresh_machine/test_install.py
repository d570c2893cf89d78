"""The README's install commands, exactly as printed, in a clean copy of the repository, with a new
empty HOME and no network: the skill lands where Claude Code and the skills CLI's agents read it,
without prompts, and carries only the skill (tools/package_skill.py decides what that is)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REPO, clean_copy, console_commands, offline, offline_available, section

sys.path.insert(0, str(REPO / "tools"))
import package_skill  # noqa: E402

pytestmark = pytest.mark.skipif(not offline_available(), reason="needs `unshare -rn` to take the network away")
INSTALLED = {"claude-code": ".claude/skills/scalekit-auth", "codex": ".agents/skills/scalekit-auth"}
MAX_BYTES = 3 * 1024 * 1024  # the installed skill stays small: it is read, copied and versioned by agents
# The repository's own files, and what is never part of a skill wherever it sits.
NOT_AT_TOP = {"tests", "benchmarks", "docs", "tools", "overrides", "dist", "mkdocs.yml", "run.sh", "package.json",
              "package-lock.json", "requirements.txt", "README.md", "pytest.ini", ".ci", ".gitignore"}
NOWHERE = {"tests", "node_modules", ".venv", "__pycache__", ".local-scalekit"}


def install_commands() -> list[str]:
    return console_commands(section((REPO / "README.md").read_text(), "Install the skill for an agent"))


def test_readme_names_the_pinned_skills_cli():
    import json

    pinned = json.loads((REPO / "package.json").read_text())["devDependencies"]["skills"]
    assert pinned == json.loads((REPO / "versions.json").read_text())["node"]["skills"]
    assert f"npx --yes skills@{pinned} add " in install_commands()[1]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A clean copy, its node_modules as `npm ci` leaves them, and the README's commands run in a new HOME."""
    if not (REPO / "node_modules" / ".bin" / "skills").exists():
        pytest.fail("node_modules/.bin/skills is missing: run `npm ci` (./run.sh setup does)")
    copy = clean_copy(tmp_path_factory.mktemp("clone") / "scalekit-auth")
    (copy / "node_modules").symlink_to(REPO / "node_modules")
    home = tmp_path_factory.mktemp("home")
    commands = install_commands()
    assert len(commands) == 2, commands
    for command in commands:
        done = subprocess.run(offline(command), cwd=copy, env={**_env(), "HOME": str(home)},
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"
    return home, copy


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("npm_", "NPM_"))}


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.mark.parametrize("agent", INSTALLED)
def test_installed_where_the_agent_reads_it(home, agent):
    home_dir, copy = home
    installed = home_dir / INSTALLED[agent]
    assert (installed / "SKILL.md").is_file(), sorted(p.name for p in home_dir.rglob("*"))[:40]
    expected = {p.as_posix() for p in package_skill.skill_files(copy)}
    assert files_under(installed) == expected


@pytest.mark.parametrize("agent", INSTALLED)
def test_installed_copy_carries_only_the_skill(home, agent):
    home_dir, _ = home
    installed = home_dir / INSTALLED[agent]
    files = files_under(installed)
    top = {Path(f).parts[0] for f in files}
    parts = {part for f in files for part in Path(f).parts}
    assert not top & NOT_AT_TOP and not parts & NOWHERE, sorted(top & NOT_AT_TOP | parts & NOWHERE)
    assert {"SKILL.md", "LICENSE", "scripts/requirements.txt", "scripts/_bootstrap.py",
            "reference/local-environment.md"} <= files
    assert not any(p.is_symlink() for p in installed.rglob("*"))
    assert not [f for f in files if b"PRIVATE KEY-----" in (installed / f).read_bytes()]
    size = sum((installed / f).stat().st_size for f in files)
    assert size <= MAX_BYTES, f"{size} bytes installed, at most {MAX_BYTES}"


def test_installed_copy_passes_the_reference_validator(home):
    home_dir, _ = home
    agentskills = Path(sys.executable).parent / "agentskills"
    done = subprocess.run([str(agentskills), "validate", str(home_dir / INSTALLED["claude-code"])],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_installing_again_replaces_the_old_copy(home):
    home_dir, copy = home
    installed = home_dir / INSTALLED["claude-code"]
    (installed / "reference" / "removed-page.md").write_text("from an older version\n")
    command = install_commands()[0]
    done = subprocess.run(offline(command), cwd=copy, env={**_env(), "HOME": str(home_dir)},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (installed / "reference" / "removed-page.md").exists()
    assert (installed / "SKILL.md").is_file()


# ---- what the packager leaves out, file by file ------------------------------------------------


def test_packager_leaves_out_keys_env_files_locks_and_symlinks(tmp_path):
    root = tmp_path / "repo"
    (root / "scripts" / "__pycache__").mkdir(parents=True)
    (root / "templates" / "app" / "node_modules" / "x").mkdir(parents=True)
    (root / "templates" / "app" / "tests").mkdir()
    (root / "tests").mkdir()
    files = {
        "SKILL.md": "---\nname: scalekit-auth\n---\n",
        "scripts/run.py": "print('hi')\n",
        "scripts/__pycache__/run.cpython-311.pyc": "",
        "templates/app/.env.example": "SCALEKIT_CLIENT_ID=skc_...\n",
        "templates/app/.env": "SCALEKIT_CLIENT_SECRET=real\n",
        "templates/app/package-lock.json": "{}\n",
        "package-lock.json": "{}\n",
        "templates/app/server.key": "x\n",
        "templates/app/notes.txt": "-----BEGIN RSA PRIVATE KEY-----\nabc\n",
        "templates/app/node_modules/x/index.js": "\n",
        "templates/app/tests/test_app.py": "\n",
        "tests/test_x.py": "\n",
    }
    for rel, text in files.items():
        (root / rel).write_text(text)
    (root / "templates" / "app" / "link.md").symlink_to(root / "SKILL.md")
    kept = {p.as_posix() for p in package_skill.skill_files(root)}
    # a template's lock file stays: it pins what a user of the copied template installs
    assert kept == {"SKILL.md", "scripts/run.py", "templates/app/.env.example", "templates/app/package-lock.json"}


def test_packager_refuses_a_folder_that_is_not_a_skill(tmp_path):
    dest = tmp_path / "scalekit-auth"
    dest.mkdir()
    (dest / "precious.txt").write_text("keep me\n")
    with pytest.raises(SystemExit, match="not a packaged skill"):
        package_skill.package(dest)
    assert (dest / "precious.txt").exists()
    done = subprocess.run([sys.executable, str(REPO / "tools" / "package_skill.py"), "--dest", str(tmp_path / "other")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "must end in a folder named scalekit-auth" in done.stderr
    assert "Traceback" not in done.stderr
