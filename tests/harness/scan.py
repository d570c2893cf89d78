"""The one fence scanner: every fenced block in every Markdown file.

It follows pymdownx.superfences rather than CommonMark, because the site renders with
superfences: a fence may be indented (content tabs, admonitions, lists), may use backticks
or tildes, may be 3 or more characters long, and is closed by a line with the same indent
and the same character repeated at least as often. Every test that executes, compares or
allows a fence is driven from this scan, so completeness holds by construction.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

# Folders that never hold the project's own Markdown. `docs/` only holds symlinks to the
# skill's folders (scanning it would count every page twice).
SKIP_DIRS = {".git", ".venv", "node_modules", "site", "__pycache__", ".pytest_cache"}
SKIP_ROOT_DIRS = {"docs", "dist"}  # docs/: symlinks to the pages; dist/: the packaged copy (./run.sh package)
# Deliberately broken Markdown that proves the harness catches errors.
SKIP_REL_DIRS = {"tests/harness_fixtures"}

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>.*?)[ \t]*$")
_ATTR = re.compile(r"""(?P<key>[A-Za-z_][\w-]*)=(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s}"']+))""")
INCLUDE_DIRECTIVE = re.compile(r"^\s*-{2,}8<-{2,}")


@dataclass(frozen=True)
class Fence:
    path: Path  # absolute path of the Markdown file
    rel: str  # path relative to the scan root, forward slashes
    line: int  # 1-based line of the opening fence
    end_line: int  # 1-based line of the closing fence
    indent: str  # the opening fence's indentation (removed from the body)
    marker: str  # e.g. "```" or "~~~~"
    info: str  # raw info string after the fence characters
    lang: str  # lower-cased language, "" when none is given
    attrs: dict = field(hash=False, compare=False)  # key="value" pairs (brace form or bare)
    braced_keys: frozenset = frozenset()  # keys that appeared inside {...}
    body: str = ""  # dedented content, each line ending in "\n"

    @property
    def id(self) -> str:
        return f"{self.rel}:{self.line}"

    def __str__(self) -> str:  # used in failure messages
        return f"{self.rel}:{self.line} ({self.marker}{self.lang or ' no language'})"


@dataclass(frozen=True)
class ScanProblem:
    rel: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.rel}:{self.line}: {self.message}"


def parse_info(info: str) -> tuple[str, dict, frozenset]:
    """Language, attributes and the attribute keys written inside braces.

    Accepts `python`, `python {title="a.py" test="skip"}`, `{ .python title="a.py" }` and
    `python title="a.py"` (the last renders only for a bare title; see the README).
    """
    lang = ""
    attrs: dict[str, str] = {}
    braced: set[str] = set()
    brace_at = info.find("{")
    head, brace = (info, "") if brace_at < 0 else (info[:brace_at], info[brace_at:])
    head_tokens = head.split()
    if head_tokens and "=" not in head_tokens[0]:
        lang = head_tokens[0].lstrip(".")
    for m in _ATTR.finditer(head):
        attrs[m["key"]] = _value(m)
    if brace:
        inner = brace.strip().lstrip("{").rstrip("}")
        if not lang:
            classes = [t for t in inner.split() if t.startswith(".")]
            if classes:
                lang = classes[0][1:]
        for m in _ATTR.finditer(inner):
            attrs[m["key"]] = _value(m)
            braced.add(m["key"])
    return lang.lower(), attrs, frozenset(braced)


def _value(m: re.Match) -> str:
    for group in ("dq", "sq", "bare"):
        if m[group] is not None:
            return m[group]
    return ""


def scan_text(text: str, rel: str, path: Path | None = None) -> tuple[list[Fence], list[ScanProblem]]:
    lines = text.splitlines()
    fences: list[Fence] = []
    problems: list[ScanProblem] = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            if INCLUDE_DIRECTIVE.match(lines[i]):
                problems.append(
                    ScanProblem(rel, i + 1, "include directive (--8<--): raw Markdown must show the code itself")
                )
            i += 1
            continue
        indent, marker, info = m["indent"], m["fence"], m["info"]
        if marker[0] == "`" and "`" in info:  # inline code such as ```a``` is not a fence
            i += 1
            continue
        close = re.compile(r"^" + re.escape(indent) + re.escape(marker[0]) + "{" + str(len(marker)) + r",}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        if j == len(lines):
            problems.append(
                ScanProblem(
                    rel, i + 1, f"fence {marker}{info} is never closed (the closing fence needs the same indent)"
                )
            )
            break
        body_lines = []
        for k in range(i + 1, j):
            line = lines[k]
            if line.startswith(indent):
                body_lines.append(line[len(indent) :])
            elif not line.strip():
                body_lines.append("")
            else:
                problems.append(ScanProblem(rel, k + 1, "line inside a fence is indented less than its opening fence"))
                body_lines.append(line.lstrip())
        for k, line in enumerate(body_lines):
            if INCLUDE_DIRECTIVE.match(line):
                problems.append(
                    ScanProblem(
                        rel,
                        i + 2 + k,
                        "include directive (--8<--) inside a fence: show the code itself and use mirror=...",
                    )
                )
        lang, attrs, braced = parse_info(info)
        fences.append(
            Fence(
                path=path or Path(rel),
                rel=rel,
                line=i + 1,
                end_line=j + 1,
                indent=indent,
                marker=marker,
                info=info,
                lang=lang,
                attrs=attrs,
                braced_keys=braced,
                body="".join(line + "\n" for line in body_lines),
            )
        )
        i = j + 1
    return fences, problems


def scan_file(path: Path, root: Path) -> tuple[list[Fence], list[ScanProblem]]:
    rel = path.relative_to(root).as_posix()
    return scan_text(path.read_text(encoding="utf-8"), rel, path)


def markdown_files(root: Path) -> list[Path]:
    """Every Markdown file of the project under root, in a stable order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS
            and not d.startswith((".", "_"))
            and not (here == root and d in SKIP_ROOT_DIRS)
            and (f"{rel_dir}/{d}" if rel_dir != "." else d) not in SKIP_REL_DIRS
        )
        found += [here / f for f in sorted(filenames) if f.endswith(".md")]
    return found


def scan_tree(root: Path, files: list[Path] | None = None) -> tuple[list[Fence], list[ScanProblem]]:
    fences: list[Fence] = []
    problems: list[ScanProblem] = []
    for path in files if files is not None else markdown_files(root):
        f, p = scan_file(path, root)
        fences += f
        problems += p
    return fences, problems
