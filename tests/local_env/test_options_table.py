"""reference/local-environment-details.md, "Start it": its options table names every option that
`scripts/local_scalekit.py --help` lists, and no option the script does not have."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "reference" / "local-environment-details.md"
OPTION = re.compile(r"(?<![\w-])--?[a-z][a-z-]*")


def help_options() -> set[str]:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "local_scalekit.py"), "--help"], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    # Option lines start with two spaces and a dash; wrapped help text is indented further.
    return {o for line in listed.splitlines() if re.match(r"  -", line) for o in OPTION.findall(line.split("  ")[1])}


def table_options() -> set[str]:
    text = PAGE.read_text()
    start = text.index("\n## Start it\n")
    section = text[start:text.index("\n## ", start + 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `-")]
    return {o for row in rows for o in OPTION.findall(row.split("|")[1])}


def test_the_options_table_lists_every_option_of_the_help():
    listed, documented = help_options(), table_options()
    assert {"--port", "--mcp-resource", "--redirect-uri", "--help"} <= listed, listed  # the parser works
    assert not listed - documented, f"options missing from {PAGE.name}'s table: {sorted(listed - documented)}"
    assert not documented - listed, f"options in the table that --help does not know: {sorted(documented - listed)}"
