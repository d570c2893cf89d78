"""Marked regions of template files, which mirror fences must equal byte for byte.

A region is the lines between a `region <name>` and an `endregion <name>` comment line, in the
comment syntax of the file: `# region login`, `// region login`, `/* region login */`,
`{/* region login */}`, `<!-- region login -->`, `-- region login`. Marker lines of any region
are left out, so regions may nest. Blank lines at either end are dropped and the region is
dedented by its common indentation, the way a reader would paste it.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

MARKER = re.compile(r"^\s*(?:#|//|/\*|\{/\*|<!--|--)\s*(?P<end>end)?region\s+(?P<name>[\w.-]+)\s*(?:\*/\}?|-->)?\s*$")


class RegionError(Exception):
    pass


def regions(text: str) -> dict[str, str]:
    """All regions of a file's text, by name."""
    lines = text.splitlines()
    open_at: dict[str, int] = {}
    spans: dict[str, tuple[int, int]] = {}
    for n, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        name = m["name"]
        if m["end"]:
            if name not in open_at:
                raise RegionError(f"line {n + 1}: endregion {name} without region {name}")
            spans[name] = (open_at.pop(name), n)
        else:
            if name in open_at or name in spans:
                raise RegionError(f"line {n + 1}: region {name} is defined twice")
            open_at[name] = n
    if open_at:
        name, n = next(iter(open_at.items()))
        raise RegionError(f"line {n + 1}: region {name} is never closed")
    out = {}
    for name, (start, end) in spans.items():
        body = [line for line in lines[start + 1 : end] if not MARKER.match(line)]
        # Formatters put blank lines around markers (two after a Python function); they are not content.
        while body and not body[0].strip():
            body.pop(0)
        while body and not body[-1].strip():
            body.pop()
        out[name] = textwrap.dedent("".join(line + "\n" for line in body))
    return out


def region_text(root: Path, ref: str) -> str:
    """The text of `path#name` (path relative to root). Raises RegionError when it is missing."""
    if "#" not in ref:
        raise RegionError(f'mirror="{ref}" must be "<path>#<region>"')
    rel, name = ref.split("#", 1)
    if "\\" in rel or rel.startswith("/") or ".." in Path(rel).parts:
        raise RegionError(f'mirror="{ref}": use a forward-slash path inside the repository')
    path = root / rel
    if not path.is_file():
        raise RegionError(f"mirror source {rel} does not exist")
    try:
        found = regions(path.read_text(encoding="utf-8"))
    except RegionError as exc:
        raise RegionError(f"{rel}: {exc}") from None
    if name not in found:
        raise RegionError(f"{rel} has no region {name!r} (regions: {', '.join(sorted(found)) or 'none'})")
    return found[name]
