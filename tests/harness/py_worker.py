"""Child process that runs Python fences with pytest-examples, one request per stdin line.

It is started with the Scalekit environment variables already set, so the SDK, requests and
gRPC (which reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once, at its first channel) see them from
the first import. Each request is a fence; each answer is one JSON line on the protocol stream.

Why not run fences inside pytest itself: a fence's exception would crash pytest on Python 3.11
(pytest-examples builds fake code objects with `co_lnotab`, and traceback rendering raises
"generator raised StopIteration"). Here the exception is caught and reduced to
`file.md:LINE: Type: message`, which is all a reader needs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from types import SimpleNamespace


def _pytest_config(update: bool):
    # A real pytest config gives EvalExample pytest's assertion rewriting, so a failing
    # `assert` in a fence explains itself. No conftest, no cache, no ini from the repo.
    from _pytest.config import _prepareconfig

    args = ["--noconftest", "--capture=no", "-p", "no:cacheprovider", "-p", "no:timeout", "-o", "addopts="]
    return _prepareconfig(args + (["--update-examples"] if update else []))


def _placeholders() -> dict[str, str]:
    from placeholders import substitutions

    return substitutions(os.environ)


def _location(exc: BaseException, md_path: str) -> str:
    """file:line of the deepest traceback frame inside the fence (already mapped to Markdown)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == md_path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{md_path}:{line}" if line else md_path


def lint(req: dict) -> str:
    """ruff's default rules (pyflakes and syntax), so names a run never reaches are checked too.

    pytest-examples' lint_ruff reads ruff's config from the working directory and cannot map
    the current ruff output format back to Markdown lines, so ruff is called here directly.
    """
    import re
    import subprocess

    from ruff.__main__ import find_ruff_bin

    cmd = [
        find_ruff_bin(),
        "check",
        "--isolated",
        "--output-format=concise",
        "--target-version=py311",
        "--select=E4,E7,E9,F",
        "--stdin-filename=fence.py",
        "-",
    ]
    done = subprocess.run(cmd, input=req["source"], capture_output=True, text=True, timeout=60)
    if done.returncode == 0:
        return ""
    found = re.findall(r"^fence\.py:(\d+):(\d+): (.*)$", done.stdout, flags=re.M)
    if not found:
        return "ruff failed:\n" + done.stdout + done.stderr
    return "\n".join(f"{req['path']}:{req['line'] + int(n)}:{col}: {msg}" for n, col, msg in found)


def run_matrix(module: dict, spec: dict) -> list[dict]:
    """Call the fence's validating function on each token: [{name, accepted, sub, exp, error}]."""
    import asyncio
    import inspect
    from collections.abc import Mapping

    fn = module.get(spec["function"])
    answers = []
    for item in spec["tokens"]:
        answer = {"name": item["name"], "accepted": False}
        try:
            got = fn(item["token"])
            if inspect.isawaitable(got):
                got = asyncio.run(got)
        except Exception as exc:  # noqa: BLE001 - raising is how a validator refuses
            answer["error"] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            answer["accepted"] = bool(got)
            read = got.get if isinstance(got, Mapping) else (lambda key: getattr(got, key, None))
            sub, exp = read("sub"), read("exp")
            answer["sub"] = None if sub is None else str(sub)
            answer["exp"] = exp if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None
        answers.append(answer)
    return answers


def judge_anyway(result: dict, req: dict) -> None:
    """The fence's run failed; still run its validator on the matrix, since a token it lets through
    is the failure that matters. The fence runs again in plain globals, up to where it fails."""
    if not req.get("matrix"):
        return
    module: dict = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            exec(compile(req["source"], req["path"], "exec"), module)  # noqa: S102 - the fence under test
        except BaseException:  # noqa: BLE001 - already reported by the run
            pass
        if callable(module.get(req["matrix"]["function"])):
            result["matrix"] = run_matrix(module, req["matrix"])


def run_one(req: dict, config, workdir: Path) -> dict:
    from _pytest.outcomes import OutcomeException
    from pytest_examples import CodeExample, EvalExample

    example = CodeExample.create(
        req["source"], path=Path(req["path"]), start_line=req["line"], prefix=req["info"], indent=req["indent"]
    )
    tmp = Path(tempfile.mkdtemp(dir=workdir))
    request = SimpleNamespace(config=config, node=SimpleNamespace(nodeid=req["id"]))
    ev = EvalExample(tmp_path=tmp, pytest_request=request)
    ev.set_config(line_length=88, target_version="py311")
    subs = _placeholders()
    secret = os.environ.get("SCALEKIT_CLIENT_SECRET", "")
    leaked: list[str] = []

    def shown(text: str) -> str:
        if secret and secret in text:
            leaked.append(text)
        for real, placeholder in subs.items():
            text = text.replace(real, placeholder)
        return text

    ev.print_callback = shown

    problems = lint(req)
    if problems:
        return {"ok": False, "stage": "lint", "message": problems}

    captured = io.StringIO()
    cwd = os.getcwd()
    try:
        os.chdir(tmp)
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            if ev.update_examples:  # --update-examples: write the `#>` lines instead of checking them
                module = ev.run_print_update(example)
            else:
                module = ev.run_print_check(example)
        result = {"ok": True, "stage": "run", "message": ""}
        if req.get("matrix"):
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                result["matrix"] = run_matrix(module, req["matrix"])
        if ev.update_examples and example.source != req["source"]:
            result["updated"] = example.source
    except OutcomeException as exc:  # pytest.fail from the `#>` comparison
        result = {"ok": False, "stage": "output", "message": str(exc.msg)}
        judge_anyway(result, req)
    except SystemExit as exc:
        result = {
            "ok": False,
            "stage": "run",
            "message": f"{req['path']}: the fence called sys.exit({exc.code!r}); fences must return so their output can be checked",
        }
    except Exception as exc:  # noqa: BLE001 - any error in a fence is its failure
        what = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        result = {"ok": False, "stage": "run", "message": f"{_location(exc, req['path'])}: {what}"}
        judge_anyway(result, req)
    finally:
        os.chdir(cwd)
    output = captured.getvalue()
    if secret and (leaked or secret in output or secret in result["message"]):
        return {
            "ok": False,
            "stage": "secret",
            "message": f"{req['path']}:{req['line']}: the fence printed SCALEKIT_CLIENT_SECRET",
        }
    result["stdout"] = output
    return result


def main() -> None:
    # Keep the protocol stream apart from anything a fence writes to file descriptor 1.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    config = _pytest_config(update="--update-examples" in sys.argv)
    workdir = Path(tempfile.mkdtemp(prefix="py-fences-"))
    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            res = run_one(req, config, workdir)
        except BaseException as exc:  # noqa: BLE001 - report harness trouble instead of dying silently
            res = {"ok": False, "stage": "harness", "message": "".join(traceback.format_exception(exc))}
        proto.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
