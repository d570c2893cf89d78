#!/usr/bin/env python3
"""Start the local Scalekit environment. Run with --help for options and the default seed."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap  # noqa: E402  (standard library only: switches to the skill's venv, creating it on first use)

_bootstrap.use_skill_venv()

from scalekit_local.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
