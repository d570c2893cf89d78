"""Parsing what arrives from outside without ever failing with a traceback.

Request bodies, fetched client metadata documents, redirect URIs and URL-style client ids come
from anyone who can reach the port. Python's parsers raise on some of them in ways the callers did
not expect: `json.loads` raises RecursionError on deeply nested input (a 10 KB body is enough),
`urlsplit` raises ValueError on a broken IPv6 host, `.port` raises on port 99999, and hosts that
are not valid IDNA make HTTP clients raise later. These helpers turn each of those into a plain
"no" that the caller reports as a 400.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import SplitResult, urlsplit

MAX_JSON_DEPTH = 32  # far deeper than any document this environment accepts legitimately


def loads_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads, plus ValueError (never RecursionError) for documents nested deeper than max_depth."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError("the JSON document is nested too deeply") from None
    # The decoder succeeded, but the objects may still be too deep for code that walks them.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise ValueError(f"the JSON document is nested more than {max_depth} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def split_url(url: object) -> SplitResult | None:
    """urlsplit(url) when url is a well-formed absolute URL with a usable host and port, else None."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        return None
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF for ch in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        host = parts.hostname
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    if not _host_ok(host):
        return None
    return parts


def _host_ok(host: str) -> bool:
    if ":" in host:  # an IPv6 literal; urlsplit already checked the brackets
        import ipaddress

        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return False
        return True
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.rstrip(".").split(".")
    return all(0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label) for label in labels)
