"""The Agent Skills format, checked mechanically.

Rule ids (F*, B*, P*) refer to the format checklist in the project's research notes: the
reference validator (`agentskills validate`) on an installed-style copy, plus the rules it does
not cover: frontmatter parsing under two YAML parsers, description content, size budgets,
links, one-hop reachability, script listing, one env-var vocabulary.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest
import strictyaml
import yaml

from harness import REPO, markdown_files, scan_text

SKILL = REPO / "SKILL.md"
SKILL_NAME = "scalekit-auth"
PATH_FOLDERS = ("full-stack-auth", "modular-sso", "mcp-auth")
ALLOWED_KEYS = {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}
MAX_LINES, MAX_TOKENS, MAX_DESCRIPTION = 300, 3000, 500
# Markdown that is not part of the skill's progressive disclosure (repository docs and tooling).
NOT_SKILL_PAGES = ("README.md", "tests/", "benchmarks/", "scripts/")
# One vocabulary: only SCALEKIT_ENVIRONMENT_URL. Files that must name the old spellings to
# enforce the rule are listed with the reason.
OLD_ENV_NAMES = re.compile(r"\bSCALEKIT_(?:ENV_URL|URL|ENVIRONMENT)\b")
VOCABULARY_EXEMPT = {
    "scripts/scalekit_checks/settings.py": "validate_env.py spots the old names and tells the user to rename them",
    "tests/scripts/test_validate_env_script.py": "tests that validate_env.py spots them",
    "tests/template_suites/sdk_apps/sdk-django/app.py": "the SDK's Django integration reads its settings under the old name",
}
TEXT_SUFFIXES = {
    ".md",
    ".py",
    ".ts",
    ".tsx",
    ".js",
    ".mjs",
    ".go",
    ".json",
    ".yml",
    ".yaml",
    ".toml",
    ".txt",
    ".sh",
    ".html",
    ".example",
    ".env",
}
SKIP_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    "site",
    "__pycache__",
    ".pytest_cache",
    ".stamps",
    ".local-scalekit",
    "_snippets",
    ".harness-build",
    "dist",
}

_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?(?P<target>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(?P<target>\S+?)>?(?:\s|$)", re.M)
_CODE_SPAN = re.compile(r"(`+)(?P<code>.+?)\1")


def split_frontmatter(text: str) -> tuple[str, str]:
    assert text.startswith("---\n"), "SKILL.md must start with a --- line (F2)"
    end = text.find("\n---\n", 4)
    assert end > 0, "frontmatter is not closed by a --- line (F2)"
    return text[4:end], text[end + 5 :]


FRONTMATTER_TEXT, BODY = split_frontmatter(SKILL.read_text())
FRONTMATTER = yaml.safe_load(FRONTMATTER_TEXT)


def prose(text: str) -> str:
    """The text with fenced blocks and code spans blanked out (line numbers kept)."""
    lines = text.splitlines()
    fences, _ = scan_text(text, "page.md")
    for f in fences:
        for n in range(f.line - 1, f.end_line):
            lines[n] = ""
    return _CODE_SPAN.sub("", "\n".join(lines))


def links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return [m["target"] for m in _LINK.finditer(text)] + [m["target"] for m in _REF_DEF.finditer(text)]


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)) or target.startswith("#")


def resolve(path: Path, target: str) -> Path:
    return (path.parent / target.split("#", 1)[0].split("?", 1)[0]).resolve()


def skill_pages(root: Path = REPO) -> list[Path]:
    return [
        p
        for p in markdown_files(root)
        if not p.relative_to(root).as_posix().startswith(NOT_SKILL_PAGES) or p.name == "SKILL.md"
    ]


def reachable_from_skill(root: Path = REPO, through_reference: bool = True) -> set[Path]:
    seen, queue = {root / "SKILL.md"}, deque([root / "SKILL.md"])
    while queue:
        page = queue.popleft()
        if not through_reference and page.parent == root / "reference":
            continue
        for target in links(page):
            if is_external(target):
                continue
            dest = resolve(page, target)
            if dest.suffix == ".md" and dest.is_file() and dest not in seen:
                seen.add(dest)
                queue.append(dest)
    return seen


# --- the reference validator on a copy installed under the skill's name -------------------


def referenced_folders() -> set[str]:
    """Top-level folders SKILL.md points to, by link or by a path in the text."""
    text = SKILL.read_text()
    names = {t.split("/", 1)[0] for t in links(SKILL) if not is_external(t) and "/" in t}
    names |= set(re.findall(r"(?<![\w/.-])([a-z][\w-]*)/", text))
    return {n for n in names if (REPO / n).is_dir()}


@pytest.fixture(scope="module")
def installed_copy(tmp_path_factory) -> Path:
    """The skill as agents install it: what `./run.sh package` writes (tools/package_skill.py)."""
    sys.path.insert(0, str(REPO / "tools"))
    import package_skill

    dest = tmp_path_factory.mktemp("install") / SKILL_NAME
    package_skill.package(dest)
    return dest


def test_the_installed_copy_holds_every_folder_skill_md_names(installed_copy):
    missing = sorted(f for f in referenced_folders() if not (installed_copy / f).is_dir())
    assert not missing, f"SKILL.md names folders the installed skill lacks: {missing}"


def test_reference_validator_accepts_the_installed_copy(installed_copy):
    agentskills = Path(sys.executable).parent / "agentskills"
    done = subprocess.run(
        [str(agentskills), "validate", str(installed_copy)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_links_still_resolve_in_the_installed_copy(installed_copy):
    broken = [
        f"{page.relative_to(installed_copy)}: {t}"
        for page in skill_pages(installed_copy)
        for t in links(page)
        if not is_external(t) and not resolve(page, t).exists()
    ]
    assert not broken, "links that break once installed on their own (D2):\n" + "\n".join(broken)


# --- frontmatter --------------------------------------------------------------------------


def test_skill_file_is_named_exactly_skill_md():
    assert "SKILL.md" in [p.name for p in REPO.iterdir()]  # F1: case matters to Claude Code


def test_frontmatter_parses_under_pyyaml_and_strictyaml():
    assert isinstance(FRONTMATTER, dict), "frontmatter must be a mapping (F3)"
    strict = strictyaml.load(FRONTMATTER_TEXT).data  # raises on flow style, duplicate keys, ...
    assert set(strict) == set(FRONTMATTER)


def test_frontmatter_has_only_allowed_keys():
    assert set(FRONTMATTER) <= ALLOWED_KEYS, f"not allowed (F4): {sorted(set(FRONTMATTER) - ALLOWED_KEYS)}"
    assert {"name", "description"} <= set(FRONTMATTER)


def test_name_rules():
    name = FRONTMATTER["name"]
    assert isinstance(name, str) and 1 <= len(name) <= 64  # F5
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), name  # F6
    assert name == SKILL_NAME  # F7: the installed folder's name
    assert "anthropic" not in name and "claude" not in name  # F8


def test_description_rules():
    d = FRONTMATTER["description"]
    assert isinstance(d, str) and d.strip(), "F9"
    assert len(d.strip()) <= MAX_DESCRIPTION, f"{len(d.strip())} chars, at most {MAX_DESCRIPTION} (F12)"
    assert "<" not in d and ">" not in d, "no angle brackets (F10)"
    assert "Use when" in d, "say when to use the skill (F11)"
    assert "Not for" in d, "say what the skill does not cover"
    assert not re.match(r"(I|You|We)\b", d), "third person or imperative (F11)"


def test_optional_fields_have_the_right_shape():
    if "compatibility" in FRONTMATTER:
        assert isinstance(FRONTMATTER["compatibility"], str) and 1 <= len(FRONTMATTER["compatibility"]) <= 500  # F13
    if "metadata" in FRONTMATTER:
        meta = FRONTMATTER["metadata"]
        assert isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), "F14"
    if "allowed-tools" in FRONTMATTER:
        assert isinstance(FRONTMATTER["allowed-tools"], str)  # F15
    license_ = FRONTMATTER.get("license", "")
    if "/" in license_ or license_.endswith((".md", ".txt")) or license_.startswith("LICENSE"):
        assert (REPO / license_).is_file(), f"license names a file that is not there (F16): {license_}"


# --- size ------------------------------------------------------------------------------------


def test_skill_md_fits_the_budget():
    text = SKILL.read_text()
    lines, tokens = len(text.splitlines()), len(text) // 4
    assert lines <= MAX_LINES, f"SKILL.md has {lines} lines, at most {MAX_LINES} (B1)"
    assert tokens <= MAX_TOKENS, f"SKILL.md is ~{tokens} tokens (chars/4), at most {MAX_TOKENS} (B2)"


# --- links and disclosure ----------------------------------------------------------------------


def test_every_relative_link_resolves():
    broken = []
    for page in markdown_files(REPO):
        for target in links(page):
            rel = page.relative_to(REPO)
            if "\\" in target:
                broken.append(f"{rel}: {target} (use forward slashes)")
            elif target.startswith("/"):
                broken.append(f"{rel}: {target} (absolute path; use a relative link)")
            elif not is_external(target) and not resolve(page, target).exists():
                broken.append(f"{rel}: {target}")
    assert not broken, "broken links (B3):\n" + "\n".join(broken)


def test_paths_named_in_skill_md_exist():
    # Bare paths in prose and commands count too: an agent runs `python scripts/x.py` as written.
    text = SKILL.read_text()
    named = set(
        re.findall(
            r"(?<![\w/.-])((?:scripts|templates|reference|full-stack-auth|modular-sso|mcp-auth)/[\w./-]*[\w/])", text
        )
    )
    missing = sorted(p for p in named if not (REPO / p).exists())
    assert not missing, f"SKILL.md names paths that do not exist: {missing}"


def test_path_and_reference_pages_are_linked_from_skill_md():
    direct = {resolve(SKILL, t) for t in links(SKILL) if not is_external(t)}
    pages = [p for folder in (*PATH_FOLDERS, "reference") for p in sorted((REPO / folder).rglob("*.md"))]
    missing = [p.relative_to(REPO).as_posix() for p in pages if p.resolve() not in direct]
    assert not missing, f"link these from SKILL.md directly, one hop (B4): {missing}"


def test_no_orphan_pages():
    reached = {p.resolve() for p in reachable_from_skill()}
    orphans = [p.relative_to(REPO).as_posix() for p in skill_pages() if p.resolve() not in reached]
    assert not orphans, f"Markdown no link from SKILL.md leads to (B5): {orphans}"


def test_reference_pages_are_never_the_only_way_to_a_page():
    # References sit one level deep: an agent reads SKILL.md, then one reference, and stops.
    reached = {p.resolve() for p in reachable_from_skill(through_reference=False)}
    hidden = [p.relative_to(REPO).as_posix() for p in skill_pages() if p.resolve() not in reached]
    assert not hidden, f"only reachable through a reference page; link them from SKILL.md or a path page (B4): {hidden}"


def test_pages_say_when_to_read_them():
    vague = []
    for folder in (*PATH_FOLDERS, "reference"):
        for page in sorted((REPO / folder).rglob("*.md")):
            head = "\n".join(page.read_text().splitlines()[:6])
            if not re.search(r"Read this (when|if)\b", head):
                vague.append(page.relative_to(REPO).as_posix())
    assert not vague, f"start these with 'Read this when ...' (B7): {vague}"


def test_long_reference_pages_start_with_contents():
    missing = []
    for page in sorted((REPO / "reference").rglob("*.md")):
        lines = page.read_text().splitlines()
        if len(lines) <= 100:
            continue
        head = "\n".join(lines[:30])
        if not (re.search(r"^#+\s*Contents\b|^\*\*Contents\*\*", head, re.M) and len(re.findall(r"\]\(#", head)) >= 2):
            missing.append(f"{page.relative_to(REPO)} ({len(lines)} lines)")
    assert not missing, f"pages over 100 lines need a Contents list of anchor links near the top (B6): {missing}"


# --- scripts and vocabulary --------------------------------------------------------------------


def test_every_script_is_named_in_skill_md():
    text = SKILL.read_text()
    scripts = sorted(p for p in (REPO / "scripts").glob("*.py") if not p.name.startswith("_"))
    unnamed = [p.name for p in scripts if f"scripts/{p.name}" not in text]
    assert not unnamed, f"SKILL.md must name every script with its invocation (P1): {unnamed}"


def text_files():
    for dirpath, dirnames, filenames in os.walk(REPO):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix in TEXT_SUFFIXES or name in {".env.example", "Dockerfile"}:
                yield path.relative_to(REPO).as_posix(), path


def test_one_env_var_vocabulary():
    offenders, exempt_used = [], set()
    for rel, path in text_files():
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if OLD_ENV_NAMES.search(line):
                if rel in VOCABULARY_EXEMPT:
                    exempt_used.add(rel)
                else:
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "use SCALEKIT_ENVIRONMENT_URL (B9):\n" + "\n".join(offenders)
    stale = sorted(set(VOCABULARY_EXEMPT) - exempt_used)
    assert not stale, f"exemptions no longer needed, remove them: {stale}"
