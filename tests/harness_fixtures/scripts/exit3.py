"""Fixture script: always fails with exit code 3."""

import sys

print("something is wrong", file=sys.stderr)
sys.exit(3)
