"""Check one fence: dispatch on its class and return what happened."""

from __future__ import annotations

import difflib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .classify import Plan, check_display, classify
from .go_runner import GoBatch, is_program
from .placeholders import expected_output, shown
from .py_runner import PythonWorker
from .regions import RegionError, region_text
from .scan import Fence
from .ts_runner import TsBatch
from .validation import Spec, judge, parse_accepts

REPO = Path(__file__).resolve().parents[2]
TIMEOUTS = {"python": 60, "ts": 60, "go": 60, "shell": 120}
# How pages name the user's app's env file (SKILL.md, "Check your work"). A shell fence that names it
# gets the Scalekit variables through such a file only, as a user's app folder holds them after
# `cp .env.example .env` and `local_scalekit.py --mcp-resource http://localhost:8000/mcp --env-file`:
# the environment's variables, the seeded MCP server's id and the template's APP_URL.
APP_ENV_FILE = "path/to/your-app/.env"
APP_ENV_EXTRA = {"SCALEKIT_RESOURCE_ID": "res_70000000000004001", "APP_URL": "http://localhost:8000"}


class EnvironmentUnavailable(Exception):
    """Raised by an environment provider when the local Scalekit environment is not there."""


@dataclass(frozen=True)
class Result:
    outcome: str  # passed | failed | skipped
    stage: str  # what decided it: gate, display, mirror, lint, compile, gofmt, run, exit, output, timeout, ...
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


class Harness:
    """Checks fences found under `root` (mirror paths and shell fences resolve from there),
    with the repository's node_modules, tests/go module and .venv as the toolchain."""

    def __init__(self, root: Path, fences: list[Fence], repo: Path = REPO, update_examples: bool = False):
        self.root = root
        self.updates: list[tuple[Fence, str]] = []  # (fence, new body) from --update-examples
        self.repo = repo
        self.plans = {f.id: classify(f) for f in fences}
        self.ts = TsBatch(repo, [f for f in fences if self.plans[f.id].kind == "ts"])
        self.go = GoBatch(repo / "tests" / "go", [f for f in fences if self.plans[f.id].kind == "go"])
        self.python = PythonWorker(update=update_examples)
        self.matrices: dict[tuple, object] = {}  # (env URL, Spec) -> token matrix, fetched once per run

    def plan(self, fence: Fence) -> Plan:
        return self.plans[fence.id]

    def check(self, fence: Fence, environment: Callable[[], Mapping[str, str]]) -> Result:
        """Check one fence. A failure's message starts with the fence's file:line and the stage."""
        result = self._check(fence, environment)
        if result.outcome == "failed":
            return Result("failed", result.stage, f"{fence} failed at {result.stage}:\n{result.message}")
        return result

    def _check(self, fence: Fence, environment: Callable[[], Mapping[str, str]]) -> Result:
        plan = self.plans[fence.id]
        where = f"{fence.rel}:{fence.line}"
        if plan.kind == "gate":
            return Result("failed", "gate", plan.problem)
        if plan.kind == "skip":
            return Result("skipped", "skip", f"{where}: {fence.attrs['reason']}")
        if plan.kind == "display":
            problem = check_display(fence)
            return Result("failed", "display", problem) if problem else Result("passed", "display")
        if plan.kind == "mirror":
            return self._mirror(fence, where)

        # Compile first: it needs no Scalekit environment, so compile errors show even without one.
        if plan.kind == "ts":
            errors = self.ts.compile()[fence.id]
            if errors:
                return Result("failed", "compile", "tsc --noEmit --strict:\n" + "\n".join(errors))
        if plan.kind == "go":
            errors = self.go.compile()[fence.id]
            if errors:
                stage = "gofmt" if errors[0].startswith("not gofmt-clean") else "compile"
                return Result("failed", stage, "\n".join(errors))
            if not is_program(fence.body):
                return Result("passed", "compile", "library package: vetted and built, not run")

        try:
            env = self._env(environment())
        except EnvironmentUnavailable as exc:
            return Result(
                "failed",
                "environment",
                f"this fence runs against the local Scalekit environment, which is not available: {exc}",
            )
        timeout = float(fence.attrs.get("timeout", TIMEOUTS[plan.kind]))
        matrix = tokens = None
        if "validates" in fence.attrs:
            try:
                matrix = self.matrix(parse_accepts(fence.attrs["accepts"]), env)
            except Exception as exc:  # noqa: BLE001 - the environment or the matrix endpoint failed
                return Result("failed", "matrix", f"could not fetch the token matrix: {exc}")
            tokens = [{"name": "valid", "token": matrix.token}] + [{"name": v.name, "token": v.token} for v in matrix]

        if plan.kind == "python":
            spec = {"function": fence.attrs["validates"], "tokens": tokens} if tokens else None
            answer = self.python.run(fence, env, timeout, matrix=spec)
            if answer.get("updated"):
                self.updates.append((fence, answer["updated"]))
            if answer["ok"]:
                return self._matrix_result(fence, answer.get("matrix"), matrix)
            message = answer["message"]
            if answer.get("stdout"):
                message += "\n--- output ---\n" + procs.tail(answer["stdout"])
            return self._with_matrix(Result("failed", answer["stage"], message), fence, answer.get("matrix"), matrix)
        if plan.kind in ("ts", "go"):
            done, answers = (self.ts if plan.kind == "ts" else self.go).run(fence, env, timeout, tokens)
            result = self._judge(fence, done, env, 0, timeout)
            if result.outcome == "failed":
                return self._with_matrix(result, fence, answers, matrix)
            return self._matrix_result(fence, answers, matrix)
        if plan.kind == "shell":
            if APP_ENV_FILE not in fence.body:
                done = procs.run(["bash", "-e", "-c", fence.body], cwd=self.root, env=env, timeout=timeout)
                return self._judge(fence, done, env, int(fence.attrs.get("expect-exit", "0")), timeout)
            app = Path(tempfile.mkdtemp(prefix="your-app-"))
            try:
                variables = {**APP_ENV_EXTRA, **environment()}
                (app / ".env").write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
                body = fence.body.replace(APP_ENV_FILE, str(app / ".env"))
                # The machine's own variables (its CA settings too), none of Scalekit's: the file must supply them.
                machine = {k: v for k, v in self._env({}).items() if not k.startswith("SCALEKIT_")}
                done = procs.run(["bash", "-e", "-c", body], cwd=self.root, env=machine, timeout=timeout)
            finally:
                shutil.rmtree(app, ignore_errors=True)
            return self._judge(fence, done, env, int(fence.attrs.get("expect-exit", "0")), timeout)
        raise AssertionError(f"unhandled plan {plan}")

    def matrix(self, spec: Spec, env: Mapping[str, str]):
        """The local environment's token matrix for `spec`, fetched once per run."""
        key = (env["SCALEKIT_ENVIRONMENT_URL"], spec)
        if key not in self.matrices:
            scripts = str(self.repo / "scripts")
            if scripts not in sys.path:
                sys.path.insert(0, scripts)
            from scalekit_checks.token_matrix import fetch_matrix

            body = spec.request(env["SCALEKIT_CLIENT_ID"])
            self.matrices[key] = fetch_matrix(
                env["SCALEKIT_ENVIRONMENT_URL"], body["kind"], body["audience"], body["scopes"],
                required_scope=body.get("required_scope"), issuer=body.get("issuer"), ttl=body["ttl"],
                ca_bundle=env.get("REQUESTS_CA_BUNDLE"))
        return self.matrices[key]

    def _matrix_result(self, fence: Fence, answers: list[dict] | None, matrix) -> Result:
        """The run passed; for a validating fence, judge its validator's answers to the matrix."""
        if matrix is None:
            return Result("passed", "run")
        if answers is None:
            return Result("failed", "matrix", f"{fence.rel}:{fence.line}: {fence.attrs['validates']} was never "
                                              "called on the token matrix (did the fence exit early?)")
        problems = judge(fence, answers, matrix)
        if problems:
            return Result("failed", "matrix", "\n".join(problems))
        return Result("passed", "matrix", f"{fence.attrs['validates']} accepted the valid token and refused "
                                          f"{len(matrix.variants)} variants")

    @staticmethod
    def _with_matrix(failed: Result, fence: Fence, answers: list[dict] | None, matrix) -> Result:
        """A failed run of a validating fence: if the validator also let a bad token through (or
        refused the good one), report that first; it is the failure that matters."""
        problems = judge(fence, answers, matrix) if matrix is not None and answers is not None else []
        if not problems:
            return failed
        return Result("failed", "matrix", "\n".join(problems) + f"\n(the run also failed at {failed.stage}:\n"
                                          f"{failed.message})")

    def _env(self, scalekit: Mapping[str, str]) -> dict:
        env = dict(os.environ)
        env.update(scalekit)
        # `python` in shell fences is this repository's interpreter, as after activating .venv.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def _mirror(self, fence: Fence, where: str) -> Result:
        ref = fence.attrs["mirror"]
        try:
            source = region_text(self.root, ref)
        except RegionError as exc:
            return Result("failed", "mirror", str(exc))
        if source == fence.body:
            return Result("passed", "mirror")
        diff = "".join(difflib.unified_diff(source.splitlines(True), fence.body.splitlines(True), ref, where))
        return Result("failed", "mirror", f"differs from {ref}; copy the region again:\n{diff}")

    def _judge(self, fence: Fence, done: procs.Completed, env: Mapping, expect: int, timeout: float) -> Result:
        output = f"--- stdout ---\n{procs.tail(done.stdout)}\n--- stderr ---\n{procs.tail(done.stderr)}"
        secret = env.get("SCALEKIT_CLIENT_SECRET", "")
        if done.returncode is None:
            return Result("failed", "timeout", f"did not finish within {timeout:g} s\n{output}")
        if secret and (secret in done.stdout or secret in done.stderr):
            return Result("failed", "secret", "printed SCALEKIT_CLIENT_SECRET")
        if done.returncode != expect:
            return Result("failed", "exit", f"exited {done.returncode}, expected {expect}\n{output}")
        expected = expected_output(fence.body, "//") if self.plans[fence.id].kind in ("ts", "go") else None
        if expected is not None:
            actual = shown(done.stdout, env).splitlines()
            if actual != expected:
                return Result(
                    "failed",
                    "output",
                    f"printed output differs from the `// #>` lines\nexpected: {expected}\nactual:   {actual}",
                )
        return Result("passed", "run")

    def write_updates(self) -> list[str]:
        """Write the `#>` lines found by --update-examples back into the Markdown files."""
        written = []
        for fence, body in sorted(self.updates, key=lambda u: (str(u[0].path), -u[0].line)):
            lines = fence.path.read_text(encoding="utf-8").splitlines(keepends=True)
            new = [(fence.indent + line if line.strip() else line) + "\n" for line in body.splitlines()]
            lines[fence.line : fence.end_line - 1] = new  # the body sits between the fence lines
            fence.path.write_text("".join(lines), encoding="utf-8")
            written.append(fence.id)
        self.updates.clear()
        return written

    def close(self) -> None:
        self.python.close()
        self.ts.close()
        self.go.close()
