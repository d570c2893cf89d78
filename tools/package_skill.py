#!/usr/bin/env python3
"""Write the skill as an agent installs it: dist/scalekit-auth (or --dest), standard library only.

The repository root is the skill root, but it also holds what only this repository needs. An
installed skill carries SKILL.md, LICENSE, SUPPORTED.md, the three path folders, reference/, scripts/ and
templates/ (when present), and none of these, wherever they sit: tests, benchmarks, the docs
site (docs/ symlinks, mkdocs.yml), installed dependencies (node_modules, .venv), the repository's own lock files (templates keep theirs), build
and cache folders, .env files (an .env.example stays), private keys and symlinks.

    python3 tools/package_skill.py                    # -> dist/scalekit-auth
    python3 tools/package_skill.py --dest /tmp/x/scalekit-auth
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKILL_NAME = "scalekit-auth"
INCLUDED = ("SKILL.md", "LICENSE", "SUPPORTED.md", "full-stack-auth", "modular-sso", "mcp-auth", "reference", "scripts", "templates")
EXCLUDED_DIRS = {"tests", "__tests__", "benchmarks", "docs", "node_modules", ".venv", "venv", "__pycache__",
                 ".pytest_cache", ".mypy_cache", ".ruff_cache", ".local-scalekit", ".next", "dist", "build",
                 "site", ".git", ".stamps", ".harness-build", "_snippets", ".bin"}
LOCK_FILES = {"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb", "poetry.lock",
              "uv.lock", "Pipfile.lock"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".pem", ".key", ".p12", ".log", ".sqlite3", ".tsbuildinfo")
PRIVATE_KEY_MARKER = b"PRIVATE KEY-----"


def excluded(path: Path) -> str | None:
    """Why `path` stays out of the installed skill, or None if it goes in."""
    name = path.name
    if path.is_symlink():
        return "symlink"
    if path.is_dir():
        return "excluded folder" if name in EXCLUDED_DIRS else None
    if name in LOCK_FILES and "templates" not in path.parts:  # a template's lock file pins what users install
        return "lock file"
    if name.endswith(EXCLUDED_SUFFIXES):
        return "key, build or log file"
    if name == ".env" or (name.startswith(".env.") and name != ".env.example"):
        return "env file"
    if name == ".DS_Store":
        return "editor file"
    try:
        if PRIVATE_KEY_MARKER in path.read_bytes():
            return "private key"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    return None


def skill_files(root: Path = REPO) -> list[Path]:
    """The files of the installed skill, relative to `root`, in a stable order."""
    files: list[Path] = []
    for top in INCLUDED:
        start = root / top
        if not start.exists() or excluded(start):
            continue
        if start.is_file():
            files.append(Path(top))
            continue
        for dirpath, dirnames, filenames in os.walk(start):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if not excluded(here / d))
            files += [(here / f).relative_to(root) for f in sorted(filenames) if not excluded(here / f)]
    return files


def package(dest: Path, root: Path = REPO) -> list[Path]:
    """Write the skill to `dest` (replacing an earlier package there); return the files written."""
    if dest.exists():
        if not (dest / "SKILL.md").is_file() and any(dest.iterdir()):
            raise SystemExit(f"error: {dest} exists and is not a packaged skill; choose another --dest")
        shutil.rmtree(dest)
    files = skill_files(root)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="package_skill.py", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=REPO / "dist" / SKILL_NAME,
                        help=f"folder to write (default: dist/{SKILL_NAME}); its name should be {SKILL_NAME}")
    args = parser.parse_args(argv)
    dest = args.dest.expanduser().resolve()
    if dest.name != SKILL_NAME:
        parser.error(f"--dest must end in a folder named {SKILL_NAME} (the skill's name), not {dest.name}")
    try:
        files = package(dest)
    except OSError as exc:
        print(f"error: cannot write {dest}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    size = sum((dest / f).stat().st_size for f in files)
    print(f"wrote {len(files)} files ({size / 1024:.0f} KiB) to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
