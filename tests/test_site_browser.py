"""The built site in headless Chromium at 1280 px: no code block hides part of a line.

Long lines (URLs, resource ids, headers) wrap instead of scrolling out of view
(overrides/assets/stylesheets/code-wrap.css). The same page without that stylesheet does clip, which
shows the check can fail.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WIDTH = 1280
MCP_QUICKSTART = "mcp-auth/quickstart/"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver (./run.sh setup installs them)"),
]

# Every code block of the page's article: how wide its text is against the box that shows it.
MEASURE = """
return Array.from(document.querySelectorAll('article pre > code')).map((code, i) => ({
  index: i,
  scroll: code.scrollWidth,
  client: code.clientWidth,
  right: code.getBoundingClientRect().right,
  first_line: code.textContent.split('\\n')[0].slice(0, 80),
}));
"""


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=REPO,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="site-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", f"--window-size={WIDTH},900", "--hide-scrollbars"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(20)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


def clipped(blocks: list[dict], viewport: int) -> list[dict]:
    return [b for b in blocks if b["scroll"] > b["client"] + 1 or b["right"] > viewport]


def site_pages() -> list[str]:
    """Every page of the built site, as a path under the site root."""
    from test_site import _mkdocs_config, _nav_pages  # the nav as the site test reads it

    pages = []
    for page in _nav_pages(_mkdocs_config()["nav"]):
        stem = page[: -len(".md")]
        pages.append("" if stem == "index" else stem + "/")
    return pages


def test_mcp_quickstart_at_1280_px_has_no_clipped_code_block(driver, site_url, tmp_path):
    driver.get(site_url + MCP_QUICKSTART)
    viewport = driver.execute_script("return document.documentElement.clientWidth")
    assert viewport <= WIDTH
    blocks = driver.execute_script(MEASURE)
    assert len(blocks) >= 4, blocks  # the quickstart's json, http, python and bash blocks
    shot = tmp_path / "mcp-quickstart-1280.png"  # the whole page, for a person to look at when this fails
    driver.set_window_size(WIDTH, driver.execute_script("return document.documentElement.scrollHeight"))
    try:
        driver.save_screenshot(str(shot))
        blocks = driver.execute_script(MEASURE)  # measured again at the screenshot's size
    finally:
        driver.set_window_size(WIDTH, 900)
    assert shot.stat().st_size > 10_000, f"empty screenshot {shot}"
    assert not clipped(blocks, viewport), f"clipped code blocks (screenshot: {shot}): {clipped(blocks, viewport)}"
    assert any(b["scroll"] > 0 for b in blocks)


def test_without_the_wrap_stylesheet_the_same_page_clips(driver, site_url):
    # The check can fail: the theme's own styles scroll long lines out of view at this width.
    driver.get(site_url + MCP_QUICKSTART)
    driver.execute_script("document.querySelector('link[href*=\"code-wrap.css\"]').remove()")
    viewport = driver.execute_script("return document.documentElement.clientWidth")
    assert clipped(driver.execute_script(MEASURE), viewport), "expected long lines to overflow without code-wrap.css"


def test_no_page_has_a_clipped_code_block(driver, site_url):
    problems = []
    for page in site_pages():
        driver.get(site_url + page)
        viewport = driver.execute_script("return document.documentElement.clientWidth")
        problems += [f"{page or 'index'} block {b['index']}: {b['first_line']!r} ({b['scroll']} > {b['client']} px)"
                     for b in clipped(driver.execute_script(MEASURE), viewport)]
    assert not problems, "\n".join(problems)
