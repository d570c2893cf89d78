"""Fixture script: succeeds only when the Scalekit settings come from the --env-file it is given, not
from the process environment (a fence that names path/to/your-app/.env)."""

import os
import sys
from pathlib import Path

args = sys.argv[1:]
if args[:1] != ["--env-file"] or len(args) != 2 or not Path(args[1]).is_file():
    print(f"expected --env-file with an existing file, got {args}", file=sys.stderr)
    sys.exit(1)
if os.environ.get("SCALEKIT_ENVIRONMENT_URL"):
    print("SCALEKIT_ENVIRONMENT_URL is exported; it should come from the file only", file=sys.stderr)
    sys.exit(1)
if "SCALEKIT_ENVIRONMENT_URL=" not in Path(args[1]).read_text():
    print("the file has no SCALEKIT_ENVIRONMENT_URL", file=sys.stderr)
    sys.exit(1)
print("ok")
