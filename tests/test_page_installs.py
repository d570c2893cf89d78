"""Install commands on the pages pin exactly: every `npm install` saves exact versions
(`--save-exact`, so package.json gets `2.11.0`, not `^2.11.0`) and names each package at the version
versions.json pins."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NODE_PINS = json.loads((REPO / "versions.json").read_text(encoding="utf-8"))["node"]
PAGES = sorted(p for folder in ("full-stack-auth", "mcp-auth", "modular-sso", "reference") for p in (REPO / folder).glob("*.md"))
PAGES.append(REPO / "SKILL.md")


def npm_installs() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for line in page.read_text(encoding="utf-8").splitlines():
            command = re.sub(r"\s+#\s.*$", "", line.strip().removeprefix("$ "))
            if re.match(r"npm (install|i|add)\b", command):
                found.append((page.relative_to(REPO).as_posix(), command))
    return found


def test_pages_have_install_commands():
    pages = {page for page, _ in npm_installs()}
    assert {"full-stack-auth/express.md", "full-stack-auth/nextjs.md", "mcp-auth/express.md",
            "mcp-auth/custom-auth.md"} <= pages, pages


@pytest.mark.parametrize("page,command", npm_installs(), ids=[f"{p}:{c[:40]}" for p, c in npm_installs()])
def test_npm_install_saves_exact_pinned_versions(page, command):
    words = command.split()[2:]
    assert "--save-exact" in words or "-E" in words, f"{page}: {command!r} needs --save-exact"
    packages = [w for w in words if not w.startswith("-")]
    assert packages, command
    for spec in packages:
        name, _, version = spec.rpartition("@")
        assert name and version, f"{page}: {spec} has no version"
        assert NODE_PINS.get(name) == version, f"{page}: {spec}, versions.json pins {name} {NODE_PINS.get(name)}"


NODE_PAGES = {"full-stack-auth/express.md": "fullstack-express", "full-stack-auth/nextjs.md": "fullstack-nextjs",
              "mcp-auth/express.md": "mcp-express", "mcp-auth/nextjs.md": "mcp-nextjs"}
START = re.compile(r"`(env \$\(grep '\^NODE_EXTRA_CA_CERTS=' \.env\) [^`]+)`")


@pytest.mark.parametrize("page", sorted(NODE_PAGES))
def test_node_pages_start_the_app_as_the_template_readme_does(page):
    """One recipe: Node's CA from .env in front of the start command, the very line the template's
    README gives (tests/template_suites/test_template_env_file.py runs the README's)."""
    starts = START.findall((REPO / page).read_text(encoding="utf-8"))
    assert len(starts) == 1, f"{page}: expected one start command, got {starts}"
    readme = (REPO / "templates" / NODE_PAGES[page] / "README.md").read_text(encoding="utf-8")
    assert f"$ {starts[0]}\n" in readme, f"{page}: {starts[0]!r} is not the start line of {NODE_PAGES[page]}/README.md"
