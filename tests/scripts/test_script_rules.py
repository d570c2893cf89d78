"""Rules every validation script keeps (Agent Skills script rules P2-P5): --help with examples and
exit codes, no prompts, imports only from requirements.txt, a valid shipped JSON schema."""
from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions

import jsonschema
import pytest
from script_helpers import REPO, SCHEMA, SCRIPTS, base_env, run_many

USER_SCRIPTS = ("validate_env.py", "test_connection.py", "test_auth_flow.py", "test_mcp_server.py")
OUR_CODE = [SCRIPTS / s for s in USER_SCRIPTS] + sorted((SCRIPTS / "scalekit_checks").glob("*.py"))
LOCAL_PACKAGES = {"scalekit_checks", "scalekit_local"}


def requirement_names() -> set[str]:
    names = set()
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[=<>!~\[ ]", line)[0].lower().replace("_", "-"))
    return names


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.fixture(scope="module")
def help_runs(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("help")
    return run_many({s: (s, ("--help",), base_env(), cwd) for s in USER_SCRIPTS})


@pytest.mark.parametrize("script", USER_SCRIPTS)
def test_help_shows_examples_and_exit_codes(help_runs, script):
    run = help_runs[script]
    assert run.code == 0, run
    for text in ("usage:", "examples:", f"python scripts/{script}", "--json", "--timeout", "exit codes:", "  3  credentials",
                 "  4  network", "  5  protocol", "report.schema.json"):
        assert text in run.stdout, f"{text!r} missing from --help of {script}\n{run.stdout}"
    if script in ("test_connection.py", "test_auth_flow.py"):
        assert "--local" in run.stdout


@pytest.mark.parametrize("path", OUR_CODE, ids=lambda p: p.name)
def test_never_prompts(path):
    source = path.read_text(encoding="utf-8")
    for call in ("input(", "getpass", "readline", "sys.stdin"):
        assert call not in source, f"{path.name} uses {call}: scripts must never wait for input"


@pytest.mark.parametrize("path", OUR_CODE, ids=lambda p: p.name)
def test_imports_only_stdlib_and_requirements(path):
    allowed = requirement_names()
    distributions = packages_distributions()
    for module in imported_modules(path):
        if module in sys.stdlib_module_names or module in LOCAL_PACKAGES or module == "__future__":
            continue
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        assert owners & allowed, f"{path.name} imports {module} ({owners or 'not installed'}), not in requirements.txt"


def test_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["script"]["enum"] == [s.removesuffix(".py") for s in USER_SCRIPTS]


def test_schema_rejects_a_document_with_a_multiline_error():
    doc = {"schema_version": 1, "script": "validate_env", "ok": False, "exit_code": 2, "summary": "x",
           "error": {"category": "configuration", "check": "x", "message": "two\nlines"},
           "environment_url": None, "checks": [], "counts": {"pass": 0, "warn": 0, "fail": 1, "skip": 0},
           "elapsed_ms": 1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
    doc["error"]["message"] = "one line"
    jsonschema.validate(doc, SCHEMA)
