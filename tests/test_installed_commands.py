"""What the installed skill and a copied template tell their reader to run exists where the reader is.

An installed skill is what tools/package_skill.py carries: no tests/, benchmarks/, run.sh or
versions.json. So no template README may send its reader to those (or speak "from the repository
root"), every `scripts/<name>.py` a README or page names must be a script the skill carries, and the
commands pages print (console `$` lines and shell fences) may not run anything the skill lacks.
Python template READMEs install with the standard library's venv and pip (uv is the suites' tool).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import package_skill  # noqa: E402

SKILL_FILES = {p.as_posix() for p in package_skill.skill_files(REPO)}
SKILL_PARTS = {part for f in SKILL_FILES for part in Path(f).parts}
TRACKED_TOP = {line.split("/", 1)[0] for line in subprocess.run(
    ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()}
# Top-level entries of the repository that an installed skill has nowhere (tests, benchmarks, run.sh, ...).
REPOSITORY_ONLY = sorted(name for name in TRACKED_TOP if name not in SKILL_PARTS)
TEMPLATE_READMES = sorted((REPO / "templates").glob("*/README.md")) + [REPO / "templates" / "README.md"]
PAGES = [REPO / f for f in sorted(SKILL_FILES) if f.endswith(".md") and not f.startswith("templates/")]
SCRIPT = re.compile(r"(?<![\w/.-])scripts/([\w/-]+\.py)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")


def commands(markdown: str) -> list[str]:
    """Console `$` lines (continuations joined) and the lines of bash/sh fences."""
    found, fence, pending = [], None, ""
    for raw in markdown.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].split()[0] if line[3:].strip() else ""
            continue
        if fence is None:
            continue
        if fence == "console" and (line.startswith("$ ") or pending):
            pending += " " + (line[2:] if line.startswith("$ ") and not pending else line).rstrip("\\")
            if not line.endswith("\\"):
                found.append(pending.strip())
                pending = ""
        elif fence in ("bash", "sh", "shell") and line and not line.startswith("#"):
            found.append(line)
    return found


def repository_only_mentions(text: str) -> list[str]:
    """Repository-only names used as paths or commands (`tests/...`, `./run.sh`, `versions.json`)."""
    hits = []
    for name in REPOSITORY_ONLY:
        pattern = re.compile(rf"(?<![\w.-]){re.escape(name)}(?:/|\b)" if "." in name or name.endswith("sh")
                             else rf"(?<![\w.-]){re.escape(name)}/")
        hits += [name for _ in pattern.finditer(text)]
    return hits


def test_the_repository_only_names_are_known():
    assert {"tests", "benchmarks", "run.sh", "versions.json", "tools"} <= set(REPOSITORY_ONLY), REPOSITORY_ONLY
    assert "scripts" not in REPOSITORY_ONLY and "templates" not in REPOSITORY_ONLY


@pytest.mark.parametrize("readme", TEMPLATE_READMES, ids=lambda p: p.parent.name)
def test_template_readmes_send_the_reader_only_to_what_a_copy_or_the_skill_has(readme):
    text = readme.read_text()
    assert "repository root" not in text.lower(), f"{readme.relative_to(REPO)} speaks from the repository root"
    spans = " ".join(CODE_SPAN.findall(text)) + " " + " ".join(commands(text))
    assert not repository_only_mentions(spans), (
        f"{readme.relative_to(REPO)} names what an installed skill lacks: {sorted(set(repository_only_mentions(spans)))}")
    for script in SCRIPT.findall(text):
        assert f"scripts/{script}" in SKILL_FILES, f"{readme.relative_to(REPO)} names scripts/{script}, not in the skill"
    runs = commands(text)
    assert not [c for c in runs if c.startswith("uv ") or " uv " in c], f"{readme.relative_to(REPO)}: install with pip"
    if (readme.parent / "requirements.txt").exists():
        assert "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt" in runs, readme


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_page_commands_run_only_what_the_skill_carries(page):
    runs = commands(page.read_text())
    bad = [c for c in runs if repository_only_mentions(c) or ".venv/bin/python -m pytest" in c]
    assert not bad, f"{page.relative_to(REPO)} prints commands an installed skill cannot run: {bad}"
    for command in runs:
        for script in SCRIPT.findall(command):
            assert f"scripts/{script}" in SKILL_FILES, f"{page.relative_to(REPO)}: {command}"


def test_app_commands_name_the_apps_env_file():
    """SKILL.md's convention: a command that reads or writes the app's settings names them as
    `--env-file path/to/your-app/.env` (from the skill folder, a bare `.env` is the skill's own): the
    checkers of a running local app always, and `local_scalekit.py` whenever it writes a file."""
    offenders = []
    for path in PAGES + TEMPLATE_READMES:
        text = path.read_text()
        for command in commands(text) + CODE_SPAN.findall(text):
            checks_local_app = re.search(r"scripts/(test_web_app|test_mcp_server)\.py http://localhost", command)
            writes_a_file = re.search(r"scripts/local_scalekit\.py.* --env-file", command)
            if (checks_local_app or writes_a_file) and "--env-file path/to/your-app/.env" not in command:
                offenders.append(f"{path.relative_to(REPO)}: {command}")
    assert not offenders, "\n".join(offenders)


def done_when_sections(text: str) -> list[str]:
    return [m.group(0) for m in re.finditer(r"^## Done when\n.*?(?=^## |\Z)", text, re.M | re.S)]


@pytest.mark.parametrize("path", PAGES + TEMPLATE_READMES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_done_when_runs_only_what_the_skill_ships(path):
    """A "Done when" is the reader's own check: it must name a script the installed skill carries and
    nothing the skill lacks (the repository's test suites are not shipped)."""
    for section in done_when_sections(path.read_text()):
        assert not repository_only_mentions(section), (
            f"{path.relative_to(REPO)} Done when names what an installed skill lacks: "
            f"{sorted(set(repository_only_mentions(section)))}")
        scripts = [s for c in commands(section) for s in SCRIPT.findall(c)]
        assert scripts, f"{path.relative_to(REPO)}: its Done when runs no shipped script"
        assert all(f"scripts/{s}" in SKILL_FILES for s in scripts), (path, scripts)


RUN_A_FILE = re.compile(r"\b(?:[Rr]un|[Ee]xecute|[Ss]tart)\s+(?:it\s+with\s+|with\s+)?`([^`\n]+)`")


@pytest.mark.parametrize("path", PAGES + TEMPLATE_READMES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_prose_asks_to_run_only_shipped_files(path):
    """"run `tests/...`" in a sentence sends the reader to a file an installed skill does not have."""
    text = path.read_text()
    bad = [m.group(0) for m in RUN_A_FILE.finditer(text) if repository_only_mentions(m.group(1))
           or any(f"scripts/{s}" not in SKILL_FILES for s in SCRIPT.findall(m.group(1)))]
    assert not bad, f"{path.relative_to(REPO)} asks to run files the skill does not ship: {bad}"
