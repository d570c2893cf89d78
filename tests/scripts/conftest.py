"""Fixtures for the validation-script tests; helpers live in script_helpers.py."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty current folder, so that no stray .env is read."""
    return tmp_path
