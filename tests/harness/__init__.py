"""The snippet harness: one fence scanner, a classifier, and a runner per language.

See README.md in this folder for the fence attributes and the display-only allowlist.
"""

from .classify import DISPLAY_ONLY, GO, PYTHON, SHELL, TYPESCRIPT, Plan, classify
from .harness import REPO, EnvironmentUnavailable, Harness, Result
from .scan import Fence, ScanProblem, markdown_files, scan_file, scan_text, scan_tree

__all__ = [
    "DISPLAY_ONLY",
    "GO",
    "PYTHON",
    "REPO",
    "SHELL",
    "TYPESCRIPT",
    "EnvironmentUnavailable",
    "Fence",
    "Harness",
    "Plan",
    "Result",
    "ScanProblem",
    "classify",
    "markdown_files",
    "scan_file",
    "scan_text",
    "scan_tree",
]
