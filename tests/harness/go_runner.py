"""Go fences: gofmt-clean, then `go vet` and `go build` inside the tests/go module, then run
the ones that are whole programs. One vet and one build invocation cover every fence, so the
shared Go build cache does the heavy lifting once."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from . import procs
from .scan import Fence
from .workdirs import run_dir, slug

_PROGRAM = (re.compile(r"^package main\s*$", re.M), re.compile(r"^func main\(\)", re.M))
# Added next to a validating fence (package main). Package-level variables are set before init()
# runs, so a validator that uses a package-level client works here. With SCALEKIT_HARNESS_MATRIX
# set, init() calls the validator on each token (func(string) or func(context.Context, string),
# returning claims and an error), writes the answers to SCALEKIT_HARNESS_ANSWERS, and main() runs
# as usual afterwards.
MATRIX_FILE = "zz_scalekit_matrix.go"
MATRIX_HOOK = """\
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
)

func init() {
	path := os.Getenv("SCALEKIT_HARNESS_MATRIX")
	if path == "" {
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	var tokens []struct{ Name, Token string }
	if err := json.Unmarshal(raw, &tokens); err != nil {
		panic(err)
	}
	answers := make([]map[string]any, 0, len(tokens))
	for _, t := range tokens {
		answers = append(answers, scalekitHarnessCall(reflect.ValueOf(%s), t.Name, t.Token))
	}
	out, _ := json.Marshal(answers)
	if err := os.WriteFile(os.Getenv("SCALEKIT_HARNESS_ANSWERS"), out, 0o600); err != nil {
		panic(err)
	}
}

func scalekitHarnessCall(fn reflect.Value, name, token string) (answer map[string]any) {
	answer = map[string]any{"name": name, "accepted": false}
	defer func() {
		if r := recover(); r != nil {
			answer["error"] = fmt.Sprint("panic: ", r)
		}
	}()
	var args []reflect.Value
	switch fn.Type().NumIn() {
	case 1:
		args = []reflect.Value{reflect.ValueOf(token)}
	case 2:
		args = []reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(token)}
	default:
		answer["error"] = "the validator must take (token string) or (ctx context.Context, token string)"
		return answer
	}
	out := fn.Call(args)
	if last := out[len(out)-1]; last.Type().Implements(reflect.TypeOf((*error)(nil)).Elem()) && !last.IsNil() {
		answer["error"] = last.Interface().(error).Error()
		return answer
	}
	claims := map[string]any{}
	if encoded, err := json.Marshal(out[0].Interface()); err == nil {
		_ = json.Unmarshal(encoded, &claims)
	}
	answer["accepted"] = !out[0].IsZero()
	answer["sub"], answer["exp"] = claims["sub"], claims["exp"]
	return answer
}
"""


def is_program(body: str) -> bool:
    return all(p.search(body) for p in _PROGRAM)


def go_env() -> dict:
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", GOWORK="off", GOFLAGS="-mod=readonly -buildvcs=false")
    return {k: v for k, v in env.items() if not k.startswith("SCALEKIT_")}


class GoBatch:
    def __init__(self, module: Path, fences: list[Fence]):
        self.module = module
        self.fences = [f for f in fences if f.lang == "go"]
        self.dir: Path | None = None
        self.binaries: dict[str, Path] = {}
        self.errors: dict[str, list[str]] | None = None

    def compile(self) -> dict[str, list[str]]:
        if self.errors is not None:
            return self.errors
        self.dir = run_dir(self.module / "_snippets")
        rel_dir = self.dir.relative_to(self.module).as_posix()
        by_name: dict[str, Fence] = {}
        for n, fence in enumerate(self.fences):
            name = f"f{n:03d}_{slug(fence.rel)}_{fence.line}"
            (self.dir / name).mkdir()
            (self.dir / name / "snippet.go").write_text(fence.body)
            if fence.attrs.get("validates") and is_program(fence.body):
                (self.dir / name / MATRIX_FILE).write_text(MATRIX_HOOK % fence.attrs["validates"])
            by_name[name] = fence
        self.errors = {f.id: [] for f in self.fences}
        if not self.fences:
            return self.errors
        env = go_env()
        gofmt = shutil.which("gofmt") or str(Path(shutil.which("go")).parent / "gofmt")
        files = [str(self.dir / name / "snippet.go") for name in by_name]
        listed = procs.run([gofmt, "-l", *files], cwd=self.module, env=env, timeout=120)
        for line in listed.stdout.splitlines():
            name = Path(line).parent.name
            if name in by_name:
                diff = procs.run([gofmt, "-d", line], cwd=self.module, env=env, timeout=60).stdout
                self.errors[by_name[name].id].append(
                    "not gofmt-clean (run gofmt on it):\n" + _relabel(diff, by_name[name])
                )
        if listed.stderr.strip():  # syntax errors: gofmt cannot even parse the fence
            self._attribute(listed.stderr, by_name, rel_dir, "gofmt")
        pkgs = [f"./{rel_dir}/{name}" for name in by_name]
        vet = procs.run(["go", "vet", *pkgs], cwd=self.module, env=env, timeout=900)
        self._attribute(vet.stdout + vet.stderr, by_name, rel_dir, "go vet")
        bin_dir = self.dir / "_bin"
        bin_dir.mkdir()
        build = procs.run(["go", "build", "-o", str(bin_dir) + "/", *pkgs], cwd=self.module, env=env, timeout=900)
        self._attribute(build.stdout + build.stderr, by_name, rel_dir, "go build")
        for name, fence in by_name.items():
            if (bin_dir / name).exists():
                self.binaries[fence.id] = bin_dir / name
        if (vet.returncode or build.returncode) and not any(self.errors.values()):
            for errs in self.errors.values():
                errs.append("go vet/build failed:\n" + procs.tail(vet.stderr + build.stderr))
        return self.errors

    def _attribute(self, output: str, by_name: dict[str, Fence], rel_dir: str, tool: str) -> None:
        """Give each output line to the fence whose package it names; map file lines to Markdown."""
        where = re.compile(r"(?:\./)?" + re.escape(rel_dir) + r"/(?P<name>[^/\s]+)(?:/snippet\.go(?::(?P<line>\d+))?)?")
        current = None
        for line in output.splitlines():
            if not line.strip():
                continue
            m = where.search(line) or re.search(r"/(?P<name>f\d{3}_[\w]+)/snippet\.go(?::(?P<line>\d+))?", line)
            if m and m["name"] in by_name:
                current = by_name[m["name"]]
                if line.startswith("#"):
                    continue  # package header; its errors follow
                if m["line"]:
                    md = f"{current.rel}:{current.line + int(m['line'])}"
                    line = line[: m.start()] + md + line[m.end() :]
            if current is not None and not line.startswith("#"):
                msg = f"{tool}: {line.strip()}"
                if msg not in self.errors[current.id]:
                    self.errors[current.id].append(msg)

    def run(self, fence: Fence, env: dict, timeout: float, tokens: list[dict] | None = None
            ) -> tuple[procs.Completed, list[dict] | None]:
        """Run the program; with `tokens`, its validator answers them first (see MATRIX_HOOK)."""
        binary = self.binaries[fence.id]
        if tokens is None:
            return procs.run([str(binary)], cwd=binary.parent, env=env, timeout=timeout), None
        matrix, answers = binary.with_suffix(".matrix.json"), binary.with_suffix(".answers.json")
        matrix.write_text(json.dumps(tokens))
        answers.unlink(missing_ok=True)
        env = {**env, "SCALEKIT_HARNESS_MATRIX": str(matrix), "SCALEKIT_HARNESS_ANSWERS": str(answers)}
        done = procs.run([str(binary)], cwd=binary.parent, env=env, timeout=timeout)
        return done, json.loads(answers.read_text()) if answers.exists() else None

    def close(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def _relabel(diff: str, fence: Fence) -> str:
    return re.sub(r"^(---|\+\+\+) \S+", lambda m: f"{m[1]} {fence.rel}:{fence.line}", diff, flags=re.M)
