"""Fixture script: succeeds only when the harness passed the Scalekit environment through."""

import os
import sys

if not os.environ.get("SCALEKIT_ENVIRONMENT_URL"):
    print("SCALEKIT_ENVIRONMENT_URL is not set", file=sys.stderr)
    sys.exit(1)
print("ok", " ".join(sys.argv[1:]))
