"""What a page shows in place of values that differ per environment.

Fences run against the local Scalekit environment, whose URL and client id differ from a
reader's. Printed output is compared after replacing the real values with the placeholders
SKILL.md uses, so a page shows `https://your-env.scalekit.com/oauth/authorize?...`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDERS = {
    "SCALEKIT_ENVIRONMENT_URL": "https://your-env.scalekit.com",
    "SCALEKIT_CLIENT_ID": "skc_...",
}


def substitutions(environ: Mapping[str, str]) -> dict[str, str]:
    """Real value -> placeholder, longest real value first (so a URL wins over a substring)."""
    pairs = {}
    for var, placeholder in PLACEHOLDERS.items():
        value = environ.get(var, "")
        if len(value) >= 4:
            pairs[value.rstrip("/")] = placeholder
    return dict(sorted(pairs.items(), key=lambda kv: -len(kv[0])))


def shown(text: str, environ: Mapping[str, str]) -> str:
    for real, placeholder in substitutions(environ).items():
        text = text.replace(real, placeholder)
    return text


def expected_output(body: str, comment: str) -> list[str] | None:
    """The `<comment> #> line` output lines a TS or Go fence shows, or None if it shows none."""
    pattern = re.compile(r"^\s*" + re.escape(comment) + r" ?#>(?: (?P<text>.*)|$)")
    lines = [m["text"] or "" for m in map(pattern.match, body.splitlines()) if m]
    return lines if lines else None
