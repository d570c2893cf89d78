"""The docs site: a strict build, a nav that lists every page, and rendered code that is
exactly the code the snippet harness checked."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import REPO, scan_file

DOCS = REPO / "docs"
FIXTURE_PAGE = REPO / "tests" / "harness_fixtures" / "pages" / "good.md"
_BLOCK = re.compile(r'<div class="language-(?P<lang>[\w+-]+) highlight">|<pre class="(?P<mermaid>mermaid)">')
_CODE = re.compile(r"<code>(?P<code>.*?)</code>", re.S)


def build(config: Path, site_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site_dir)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = build(REPO / "mkdocs.yml", out)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory) -> Path:
    """The real mkdocs.yml (INHERIT) rendering the harness's every-kind-of-fence page."""
    work = tmp_path_factory.mktemp("fixture-site")
    (work / "docs").mkdir()
    (work / "docs" / "index.md").write_text(FIXTURE_PAGE.read_text())
    config = work / "mkdocs.yml"
    config.write_text(f"INHERIT: {REPO / 'mkdocs.yml'}\ndocs_dir: docs\nnav:\n  - Home: index.md\n"
                      f"theme:\n  name: material\n  custom_dir: {REPO / 'overrides'}\n")  # relative to mkdocs.yml there
    done = build(config, work / "site")
    assert done.returncode == 0, f"fixture build failed:\n{done.stdout}\n{done.stderr}"
    return work / "site"


def _mkdocs_config() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    # mkdocs.yml names a Python function for mermaid; only its name matters here.
    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: suffix)
    return yaml.load((REPO / "mkdocs.yml").read_text(), Loader=Loader)


def _nav_pages(nav) -> list[str]:
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def docs_pages() -> list[str]:
    """Every Markdown page mkdocs sees under docs/ (following the symlinks), docs-relative."""
    found = []
    for dirpath, dirnames, filenames in os.walk(DOCS, followlinks=True):
        # Build output of templates (node_modules, .venv, .next) is excluded from the site (mkdocs.yml).
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "node_modules")
        found += [(Path(dirpath) / f).relative_to(DOCS).as_posix() for f in filenames if f.endswith(".md")]
    return sorted(found)


def html_path(site_dir: Path, page: str) -> Path:
    stem = page[: -len(".md")]
    if stem == "index" or stem.endswith("/index") or stem.endswith("README"):
        return site_dir / (stem.rsplit("/", 1)[0] + "/index.html" if "/" in stem else "index.html")
    return site_dir / stem / "index.html"


def rendered_blocks(page_html: str) -> list[tuple[str, str]]:
    """(language class, code text) of every code block in the page's article, in order."""
    article = page_html[page_html.index("<article") : page_html.index("</article>")]
    blocks = []
    for m in _BLOCK.finditer(article):
        code = _CODE.search(article, m.end())
        text = re.sub(r"<[^>]+>", "", code["code"]) if code else ""
        blocks.append(("mermaid" if m["mermaid"] else m["lang"], html.unescape(text)))
    # Any <pre> not counted above (an indented code block, say) is code no fence accounts for.
    pre_total = article.count("<pre")
    if pre_total != len(blocks):
        blocks.append(("<pre> without a language", f"{pre_total - len(blocks)} block(s)"))
    return blocks


def expected_blocks(source: Path) -> list[tuple[str, str]]:
    fences, _ = scan_file(source, source.parent)
    # Pygments renders languages it has no lexer for (env, for example) with the text class.
    return [(f.lang, f.body) for f in fences]


def assert_same_code(page: str, rendered: list, expected: list) -> None:
    assert len(rendered) == len(expected), (
        f"{page}: {len(rendered)} rendered code blocks, {len(expected)} fences scanned:\n"
        f"rendered {[r[0] for r in rendered]}\nscanned  {[e[0] for e in expected]}"
    )
    for (r_lang, r_text), (e_lang, e_text) in zip(rendered, expected, strict=True):
        assert r_lang in (e_lang, "text"), f"{page}: a ```{e_lang} fence rendered as language-{r_lang}"
        assert r_text.rstrip("\n") == e_text.rstrip("\n"), f"{page}: rendered ```{e_lang} block differs from its fence"


def test_site_builds_strict(site):
    assert (site / "index.html").is_file()


def test_docs_holds_only_symlinks_to_the_skill():
    for entry in DOCS.iterdir():
        assert entry.is_symlink(), f"docs/{entry.name} is a real file: docs/ holds only symlinks"
        assert REPO in entry.resolve().parents or entry.resolve() == REPO, entry


def test_nav_lists_every_page():
    nav = sorted(_nav_pages(_mkdocs_config()["nav"]))
    # Template folders are served but not in the nav (mkdocs.yml: not_in_nav: /templates/*/).
    pages = [p for p in docs_pages() if not re.match(r"templates/[^/]+/", p)]
    assert nav == pages, f"only in nav: {sorted(set(nav) - set(pages))}; not in nav: {sorted(set(pages) - set(nav))}"


def test_every_rendered_code_block_is_a_checked_fence(site):
    for page in docs_pages():
        source = (DOCS / page).resolve()
        rendered = rendered_blocks(html_path(site, page).read_text())
        assert_same_code(page, rendered, expected_blocks(source))


def test_fence_conventions_render(fixture_site):
    page = (fixture_site / "index.html").read_text()
    assert '<div class="tabbed-set tabbed-alternate"' in page
    assert re.search(
        r'<div class="tabbed-labels"><label[^>]*>Python</label><label[^>]*>TypeScript</label><label[^>]*>Go</label>',
        page,
    )
    assert '<pre class="mermaid"><code>graph LR' in page
    assert '<span class="filename">authorize.py</span>' in page
    assert '<div class="admonition note">' in page and '<details class="tip">' in page
    assert "{title=" not in page and "{mirror=" not in page and "test=&quot;skip" not in page, (
        "attributes leaked into the text"
    )
    assert_same_code("fixture good.md", rendered_blocks(page), expected_blocks(FIXTURE_PAGE))
