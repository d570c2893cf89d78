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
            (self.dir / name).write_text(fence.body + "export {};\n")
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

    def run(self, fence: Fence, env: dict, timeout: float) -> procs.Completed:
        tsx = self.repo / "node_modules" / ".bin" / "tsx"
        path = self.files[fence.id]
        return procs.run([str(tsx), path.name], cwd=path.parent, env=env, timeout=timeout)

    def close(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def _node_env() -> dict:
    # Compiling needs no Scalekit settings; keep them out so tsc output never depends on them.
    return {k: v for k, v in os.environ.items() if not k.startswith("SCALEKIT_")}
