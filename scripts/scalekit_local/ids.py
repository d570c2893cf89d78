"""Ids shaped like Scalekit's, and the clock that records are stamped with. Imports nothing of the package."""
from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """A Scalekit-looking id: prefix, underscore, 17 or 18 digits."""
    return f"{prefix}_{10**17 + secrets.randbelow(9 * 10**17)}"


def now() -> float:
    return time.time()
