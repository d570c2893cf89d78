"""Check results, exit codes and the two output formats (text lines or one JSON document).

Every line the scripts print goes through `Report.redact`, so a secret or a token that slips into
an error message from a library is masked before it reaches stdout or stderr.
"""
from __future__ import annotations

import enum
import json
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


class Exit(enum.IntEnum):
    OK = 0
    CONFIG = 2  # missing or malformed settings, bad flags, local clock
    AUTH = 3  # wrong credentials, client or redirect URI not allowed, login refused
    NETWORK = 4  # DNS, refused, TLS trust, timeouts
    PROTOCOL = 5  # the server answered something unexpected (5xx, invalid JSON, wrong issuer, ...)


CATEGORY = {
    Exit.CONFIG: "configuration",
    Exit.AUTH: "credentials",
    Exit.NETWORK: "network",
    Exit.PROTOCOL: "protocol",
}


class CheckFailed(Exception):
    """Raised inside a check to fail it and stop the script."""

    def __init__(self, code: Exit, message: str, data: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


@dataclass
class CheckResult:
    name: str
    status: str  # pass | warn | fail | skip
    message: str
    duration_ms: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    code: Exit = Exit.OK


_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


class Check:
    """One named step; use as a context manager via `Report.check(name)`."""

    def __init__(self, report: Report, name: str):
        self.report = report
        self.name = name
        self.result: CheckResult | None = None
        self._start = time.perf_counter()

    def _set(self, status: str, message: str, data: dict | None, code: Exit = Exit.OK) -> None:
        self.result = CheckResult(self.name, status, message, None, data or {}, code)

    def ok(self, message: str, data: dict | None = None) -> None:
        self._set("pass", message, data)

    def warn(self, message: str, data: dict | None = None) -> None:
        self._set("warn", message, data)

    def skip(self, message: str, data: dict | None = None) -> None:
        self._set("skip", message, data)

    def fail(self, code: Exit, message: str, data: dict | None = None) -> None:
        """Record a failure and carry on (for checks that should all run, like validate_env)."""
        self._set("fail", message, data, code)

    def __enter__(self) -> Check:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, CheckFailed):
            self._set("fail", exc.message, exc.data, exc.code)
            exc.recorded = True
        elif exc is not None:
            return False
        if self.result is None:
            self._set("pass", "ok", None)
        if self.result.duration_ms is None:
            self.result.duration_ms = round((time.perf_counter() - self._start) * 1000, 1)
        self.report.add(self.result)
        return False  # a CheckFailed propagates and ends the script


class Report:
    def __init__(self, script: str, json_mode: bool):
        self.script = script
        self.json_mode = json_mode
        self.results: list[CheckResult] = []
        self.secrets: set[str] = set()
        self.info: dict[str, Any] = {"environment_url": None}  # extra top-level JSON fields
        self.started = time.perf_counter()

    # -- secrets -----------------------------------------------------------------------------
    def add_secret(self, value: str | None) -> None:
        if value and len(value) >= 6:
            self.secrets.add(value)

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return _JWT_RE.sub("[redacted token]", text)

    def _redact_data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._redact_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._redact_data(v) for v in value]
        return value

    # -- checks ------------------------------------------------------------------------------
    def check(self, name: str) -> Check:
        return Check(self, name)

    def add(self, result: CheckResult) -> None:
        message = " ".join(result.message.split())  # always one line
        if message.startswith(f"{result.name}: "):  # helpers prefix what they were doing
            message = message[len(result.name) + 2:]
        result.message = self.redact(message)
        result.data = self._redact_data(result.data)
        self.results.append(result)
        if not self.json_mode:
            print(self._line(result), flush=True)

    def note(self, message: str) -> None:
        """A diagnostic for people watching (stderr), e.g. 'open this URL'."""
        print(self.redact(message), file=sys.stderr, flush=True)

    @staticmethod
    def _line(r: CheckResult) -> str:
        return f"{r.status.upper():<4}  {r.name:<33} {r.message}"

    @property
    def failure(self) -> CheckResult | None:
        return next((r for r in self.results if r.status == "fail"), None)

    @property
    def exit_code(self) -> Exit:
        failure = self.failure
        return failure.code if failure else Exit.OK

    # -- the end -----------------------------------------------------------------------------
    def finish(self, unexpected: CheckFailed | None = None) -> int:
        """Print the summary (text) or the JSON document, and the error line on stderr."""
        if unexpected is not None:  # a failure outside any check (flags, setup, a crash)
            self.add(CheckResult("script", "fail", unexpected.message, None, unexpected.data or {},
                                 unexpected.code))
        code = self.exit_code
        failure = self.failure
        counts = {s: sum(r.status == s for r in self.results) for s in ("pass", "warn", "fail", "skip")}
        if failure:
            summary = f"FAILED (exit {int(code)}, {CATEGORY[code]}): {failure.name}: {failure.message}"
        else:
            summary = f"OK: {counts['pass']} passed, {counts['warn']} warnings, {counts['skip']} skipped"
        elapsed_ms = round((time.perf_counter() - self.started) * 1000, 1)
        if self.json_mode:
            doc = {
                "schema_version": SCHEMA_VERSION,
                "script": self.script,
                "ok": failure is None,
                "exit_code": int(code),
                "summary": summary,
                "error": None if failure is None else {
                    "category": CATEGORY[code], "check": failure.name, "message": failure.message},
                **self._redact_data(self.info),
                "checks": [
                    {"name": r.name, "status": r.status, "message": r.message,
                     "duration_ms": r.duration_ms, "data": r.data}
                    for r in self.results
                ],
                "counts": counts,
                "elapsed_ms": elapsed_ms,
            }
            print(self.redact(json.dumps(doc, indent=2, default=str)), flush=True)
        else:
            print(f"\n{self.redact(summary)}", flush=True)
        if failure:
            print(f"error: {failure.name}: {failure.message}", file=sys.stderr, flush=True)
        return int(code)
