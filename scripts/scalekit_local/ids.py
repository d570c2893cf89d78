"""Ids shaped like Scalekit's, the clock that records are stamped with, and its RFC 3339 form.
Imports nothing of the package."""
from __future__ import annotations

import datetime
import secrets
import time


def new_id(prefix: str) -> str:
    """A Scalekit-looking id: prefix, underscore, 17 or 18 digits."""
    return f"{prefix}_{10**17 + secrets.randbelow(9 * 10**17)}"


def now() -> float:
    return time.time()


def rfc3339(seconds: float | None = None) -> str:
    """A moment (now when None) as Scalekit's JSON writes it: 2025-01-15T08:55:22.802860Z."""
    moment = datetime.datetime.fromtimestamp(time.time() if seconds is None else seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
