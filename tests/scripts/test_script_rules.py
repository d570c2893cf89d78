"""Rules every validation script keeps (Agent Skills script rules P2-P5): --help with examples and
exit codes, no prompts, imports only from scripts/requirements.txt (what a fresh skill venv holds), a
valid shipped JSON schema."""
from __future__ import annotations

import ast
import re
import signal
import subprocess
import sys
from importlib.metadata import packages_distributions

import jsonschema
import pytest
from script_helpers import REPO, SCHEMA, SCRIPTS, base_env, run_many

USER_SCRIPTS = ("validate_env.py", "test_connection.py", "test_auth_flow.py", "test_web_app.py", "test_mcp_server.py")
OUR_CODE = [SCRIPTS / s for s in USER_SCRIPTS] + sorted((SCRIPTS / "scalekit_checks").glob("*.py"))
# Everything a user's `python scripts/...` may import, the local environment included.
SHIPPED_CODE = sorted(SCRIPTS.glob("*.py")) + sorted((SCRIPTS / "scalekit_checks").glob("*.py")) + sorted(
    (SCRIPTS / "scalekit_local").rglob("*.py"))
LOCAL_PACKAGES = {"scalekit_checks", "scalekit_local", "_bootstrap"}


def requirement_names() -> set[str]:
    names = set()
    for line in (SCRIPTS / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
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


@pytest.mark.parametrize("path", SHIPPED_CODE, ids=lambda p: p.relative_to(SCRIPTS).as_posix())
def test_imports_only_stdlib_and_requirements(path):
    allowed = requirement_names()
    distributions = packages_distributions()
    for module in imported_modules(path):
        if module in sys.stdlib_module_names or module in LOCAL_PACKAGES or module == "__future__":
            continue
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        assert owners & allowed, f"{path.name} imports {module} ({owners or 'not installed'}), not in scripts/requirements.txt"


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


def test_every_pin_is_in_exactly_one_requirements_file():
    """requirements.txt adds the site and test tools to scripts/requirements.txt; nothing pinned twice."""
    def pins(path):
        found = {}
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                name, _, version = line.partition("==")
                assert version, f"{path.name}: {line!r} is not pinned exactly (name==version)"
                found[name.lower().replace("_", "-")] = version
        return found

    runtime, dev = pins(SCRIPTS / "requirements.txt"), pins(REPO / "requirements.txt")
    assert "-r scripts/requirements.txt" in (REPO / "requirements.txt").read_text().splitlines()
    assert not set(runtime) & set(dev), f"pinned in both files: {sorted(set(runtime) & set(dev))}"
    assert "scalekit-sdk-python" in runtime and "pytest" in dev and "mkdocs" not in runtime


def test_all_four_scripts_share_one_meaning_per_exit_code(help_runs, tmp_path):
    """local_scalekit.py is a server, but its codes mean what they mean in the three checks."""
    meaning = {0: "", 2: "configuration", 3: "credentials", 4: "network", 5: "protocol"}
    server = run_many({"server": ("local_scalekit.py", ("--help",), base_env(), tmp_path)})["server"]
    assert server.code == 0, server
    documented = {}
    for name, run in [*help_runs.items(), ("local_scalekit.py", server)]:
        codes = run.stdout.split("exit codes", 1)[1]
        documented[name] = {int(m[1]): m[2] for m in re.finditer(r"^  (\d)  (.+)$", codes, re.M)}
    for name, codes in documented.items():
        assert codes and set(codes) <= set(meaning), (name, codes)
        for code, text in codes.items():
            if code in (2, 3, 4):
                assert text.startswith(meaning[code]), f"{name}: exit {code} is {text!r}, not {meaning[code]}"
    assert set(documented["local_scalekit.py"]) == {0, 2, 5}
    assert documented["local_scalekit.py"][5].startswith("unexpected")
    assert "[--timeout" not in server.stdout and "no --timeout" in server.stdout  # the documented exception


@pytest.mark.parametrize("script", ["test_connection.py", "test_auth_flow.py"])
def test_a_reader_that_stops_early_gets_no_traceback(tmp_path, script):
    """`python scripts/... --local | head -2`: the reader closes the pipe after two lines; the script
    stops quietly with SIGPIPE's shell status and still removes its temporary local environment."""
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / script), "--local"], cwd=tmp_path, env=base_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does once it has its line
    _, stderr = proc.communicate(timeout=60)
    assert first.startswith("PASS"), first
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert proc.returncode == 128 + signal.SIGPIPE, (proc.returncode, stderr)
    assert not list(tmp_path.iterdir()), "nothing is left in the working folder"
