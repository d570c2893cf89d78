"""TS/JS fences: one `tsc --noEmit --strict` over all of them, then each runs under tsx."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from . import procs
from .classify import TYPESCRIPT
from .scan import Fence
from .workdirs import run_dir, slug

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "target": "es2022",
        "module": "nodenext",
        "moduleResolution": "nodenext",
        "types": ["node"],
        "allowJs": True,
        "checkJs": True,
        "jsx": "react-jsx",
        # The SDK's own .d.ts files are not ours to check; their types are still used.
        "skipLibCheck": True,
        "pretty": False,
    },
    "include": ["*.ts", "*.tsx", "*.js", "*.mjs"],
}
_DIAG = re.compile(r"^(?P<file>[^\s(]+)\((?P<line>\d+),(?P<col>\d+)\): (?P<msg>.*)$")
VALIDATOR_EXPORT = "__scalekitValidates"
# Imports a fence (its top-level code runs and prints as usual), then calls its exported validator
# on each token of SCALEKIT_HARNESS_MATRIX and writes the answers to SCALEKIT_HARNESS_ANSWERS.
MATRIX_RUNNER = """\
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const fence = await import(pathToFileURL(process.argv[2]).href);
const tokens = JSON.parse(readFileSync(process.env.SCALEKIT_HARNESS_MATRIX, "utf8"));
const answers = [];
for (const { name, token } of tokens) {
  try {
    const got = await fence.%s(token);
    answers.push({ name, accepted: Boolean(got), sub: got?.sub ?? null, exp: got?.exp ?? null });
  } catch (error) {
    answers.push({ name, accepted: false, error: `${error?.name}: ${error?.message}`.slice(0, 300) });
  }
}
writeFileSync(process.env.SCALEKIT_HARNESS_ANSWERS, JSON.stringify(answers));
""" % VALIDATOR_EXPORT


class TsBatch:
    def __init__(self, repo: Path, fences: list[Fence]):
        self.repo = repo
        self.fences = [f for f in fences if f.lang in TYPESCRIPT]
        self.dir: Path | None = None
        self.files: dict[str, Path] = {}  # fence id -> generated file
        self.errors: dict[str, list[str]] | None = None

    def compile(self) -> dict[str, list[str]]:
        """Type-check every fence once; fence id -> error lines (mapped to Markdown lines)."""
        if self.errors is not None:
            return self.errors
        self.dir = run_dir(self.repo / "tests" / ".harness-build")
        (self.dir / "tsconfig.json").write_text(json.dumps(TSCONFIG, indent=2))
        by_name: dict[str, Fence] = {}
        for n, fence in enumerate(self.fences):
            name = f"f{n:03d}_{slug(fence.rel)}_{fence.line}{TYPESCRIPT[fence.lang]}"
            # `export {}` makes every file its own module, so fences cannot see each other's names.
            # A validating fence also exports its validator, for the matrix runner (and for tsc to check).
            tail = "export {};\n"
            if fence.attrs.get("validates"):
                tail += f"export {{ {fence.attrs['validates']} as {VALIDATOR_EXPORT} }};\n"
            (self.dir / name).write_text(fence.body + tail)
            self.files[fence.id] = self.dir / name
            by_name[name] = fence
        self.errors = {f.id: [] for f in self.fences}
        if not self.fences:
            return self.errors
        tsc = self.repo / "node_modules" / ".bin" / "tsc"
        done = procs.run([str(tsc), "-p", "."], cwd=self.dir, env=_node_env(), timeout=600)
        current = None
        unattributed = []
        for line in (done.stdout + done.stderr).splitlines():
            m = _DIAG.match(line)
            if m and m["file"] in by_name:
                current = by_name[m["file"]]
                md_line = current.line + int(m["line"])
                self.errors[current.id].append(f"{current.rel}:{md_line}:{m['col']} {m['msg']}")
            elif line.startswith(" ") and current is not None:
                self.errors[current.id].append(line)
            elif line.strip():
                unattributed.append(line)
        if done.returncode != 0 and not any(self.errors.values()):
            for errs in self.errors.values():  # tsc failed for a reason no fence owns
                errs.append("tsc failed:\n" + procs.tail("\n".join(unattributed) or done.stderr))
        return self.errors

    def run(self, fence: Fence, env: dict, timeout: float, tokens: list[dict] | None = None
            ) -> tuple[procs.Completed, list[dict] | None]:
        """Run the fence; with `tokens`, also its validator on each (answers, or None if it never got there)."""
        tsx = self.repo / "node_modules" / ".bin" / "tsx"
        path = self.files[fence.id]
        if tokens is None:
            return procs.run([str(tsx), path.name], cwd=path.parent, env=env, timeout=timeout), None
        runner = path.parent / "_matrix" / "run.mjs"  # outside tsconfig's include: not type-checked
        runner.parent.mkdir(exist_ok=True)
        if not runner.exists():
            runner.write_text(MATRIX_RUNNER)
        matrix, answers = path.with_suffix(".matrix.json"), path.with_suffix(".answers.json")
        matrix.write_text(json.dumps(tokens))
        answers.unlink(missing_ok=True)
        env = {**env, "SCALEKIT_HARNESS_MATRIX": str(matrix), "SCALEKIT_HARNESS_ANSWERS": str(answers)}
        done = procs.run([str(tsx), str(runner), path.name], cwd=path.parent, env=env, timeout=timeout)
        return done, json.loads(answers.read_text()) if answers.exists() else None

    def close(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def _node_env() -> dict:
    # Compiling needs no Scalekit settings; keep them out so tsc output never depends on them.
    return {k: v for k, v in os.environ.items() if not k.startswith("SCALEKIT_")}
