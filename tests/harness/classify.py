"""Decide what the tests do with each fence: run it, compare it, allow it, or fail the gate."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import yaml

from .go_runner import is_program
from .scan import Fence
from .validation import gate_problem

PYTHON = {"python", "py"}
# language -> file suffix for tsc and tsx
TYPESCRIPT = {"ts": ".ts", "typescript": ".ts", "tsx": ".tsx", "js": ".js", "javascript": ".js", "mjs": ".mjs"}
GO = {"go"}
SHELL = {"bash", "sh", "shell"}
# Shown, never executed. Each is syntax-checked where a parser exists (see check_display).
DISPLAY_ONLY = {"text", "console", "env", "http", "json", "yaml", "mermaid"}

# Attributes the harness reads. They must sit inside braces: an unbraced `test="skip"` makes
# superfences render the fence as a paragraph that swallows the next fence.
HARNESS_ATTRS = {"test", "reason", "mirror", "expect-exit", "timeout", "validates", "accepts"}
# Attributes pymdownx.highlight/superfences understand.
DISPLAY_ATTRS = {"title", "linenums", "hl_lines"}

# A shell command line the harness may run: optional VAR=value assignments, then the Python
# interpreter on one of this repository's scripts, with arguments but no pipes, lists,
# redirections or command substitution.
_SCRIPT_CALL = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*python3?\s+scripts/[\w./-]+\.py(?:\s+.*)?$")
_SHELL_META = re.compile(r"[|;&<>`]|\$\(")
_ENV_LINE = re.compile(r"^[A-Z_][A-Z0-9_]*=.*$")


@dataclass(frozen=True)
class Plan:
    kind: str  # python | ts | go | shell | mirror | display | skip | gate
    problem: str = ""  # why the gate fails this fence

    @property
    def needs_environment(self) -> bool:
        return self.kind in {"python", "ts", "go", "shell"}


def shell_commands(body: str) -> list[str]:
    """The command lines of a shell fence, continuations joined, comments and blanks dropped."""
    commands, pending = [], ""
    for raw in body.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        commands.append((pending + line).strip())
        pending = ""
    if pending:
        commands.append(pending.strip())
    return commands


def runs_only_repo_scripts(body: str) -> bool:
    commands = shell_commands(body)
    return bool(commands) and all(_SCRIPT_CALL.match(c) and not _SHELL_META.search(c) for c in commands)


def classify(fence: Fence) -> Plan:
    plan = _classify(fence)
    if plan.kind in ("gate", "skip"):
        return plan
    problem = gate_problem(fence, plan.kind, plan.kind == "go" and is_program(fence.body))
    return Plan("gate", problem) if problem else plan


def _classify(fence: Fence) -> Plan:
    unknown = set(fence.attrs) - HARNESS_ATTRS - DISPLAY_ATTRS
    if unknown:
        return Plan(
            "gate",
            f"unknown attribute(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(HARNESS_ATTRS | DISPLAY_ATTRS))})",
        )
    unbraced = (set(fence.attrs) & HARNESS_ATTRS) - fence.braced_keys
    if unbraced:
        return Plan(
            "gate",
            f'put {", ".join(sorted(unbraced))} inside braces, e.g. ```{fence.lang or "lang"} {{test="skip" reason="..."}}``` (unbraced attributes break rendering)',
        )
    if not fence.lang:
        return Plan("gate", "fence has no language; name one (use `text` for plain output)")
    test = fence.attrs.get("test")
    if test is not None:
        if test != "skip":
            return Plan("gate", f'test="{test}" is not a known value (only test="skip")')
        if not fence.attrs.get("reason", "").strip():
            return Plan("gate", 'test="skip" needs a non-empty reason="..."')
        return Plan("skip")
    if "reason" in fence.attrs:
        return Plan("gate", 'reason="..." is only used together with test="skip"')
    if "mirror" in fence.attrs:
        if set(fence.attrs) & {"expect-exit", "timeout"}:
            return Plan("gate", "a mirror fence is compared, not run: drop expect-exit/timeout")
        return Plan("mirror")
    if "expect-exit" in fence.attrs and fence.lang not in SHELL:
        return Plan("gate", "expect-exit is only for shell fences")
    for key in ("expect-exit", "timeout"):
        if key in fence.attrs and not fence.attrs[key].isdigit():
            return Plan("gate", f'{key}="{fence.attrs[key]}" must be a whole number')
    if fence.lang in PYTHON:
        return Plan("python")
    if fence.lang in TYPESCRIPT:
        return Plan("ts")
    if fence.lang in GO:
        return Plan("go")
    if fence.lang in SHELL:
        if runs_only_repo_scripts(fence.body):
            return Plan("shell")
        return Plan(
            "gate",
            "shell fence runs something other than this repository's scripts (only `python scripts/<name>.py ...` "
            "lines run); show a transcript as ```console, or skip it with a reason",
        )
    if "timeout" in fence.attrs:
        return Plan("gate", "timeout is only for fences that run")
    if fence.lang in DISPLAY_ONLY:
        return Plan("display")
    return Plan(
        "gate",
        f"```{fence.lang} is neither run by the tests, a template mirror, nor display-only "
        f"({', '.join(sorted(DISPLAY_ONLY))})",
    )


def check_display(fence: Fence) -> str | None:
    """Display-only fences still have to parse, so a page never shows broken JSON/YAML/env."""
    if fence.lang == "json":
        try:
            json.loads(fence.body)
        except ValueError as exc:
            return f"```json does not parse: {exc}"
    elif fence.lang == "yaml":
        try:
            yaml.safe_load(fence.body)
        except yaml.YAMLError as exc:
            return f"```yaml does not parse: {exc}"
    elif fence.lang == "env":
        for n, line in enumerate(fence.body.splitlines(), start=1):
            if line.strip() and not line.lstrip().startswith("#") and not _ENV_LINE.match(line):
                return f"```env line {fence.line + n} is not NAME=value: {line!r}"
    return None
