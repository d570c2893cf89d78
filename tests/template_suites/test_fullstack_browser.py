"""Headless Chromium logs in on every full-stack template with a password, a social provider and an
enterprise connection, reaches a protected page and logs out. A screenshot of each step is kept in
artifacts/fullstack-browser/<template>/ (git-ignored; the path is printed)."""
from __future__ import annotations

import base64
import hashlib
import shutil
import ssl
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import launcher
from .fullstack import TEMPLATES, App

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = launcher.REPO_ROOT / "artifacts" / "fullstack-browser"
ACME = "org_70000000000001001"

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not TEMPLATES, reason="no full-stack template yet"),
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver (./run.sh setup installs them)"),
]


@pytest.fixture(scope="module")
def driver(start_app):
    """One headless Chromium trusting exactly the local environments' certificate (they share it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    env = urlsplit(start_app(TEMPLATES[0]).target.env_url)
    pem = ssl.get_server_certificate((env.hostname, env.port))
    spki = x509.load_pem_x509_certificate(pem.encode()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    profile = tempfile.mkdtemp(prefix="skl-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1000,800", f"--user-data-dir={profile}",
                "--ignore-certificate-errors-spki-list=" + base64.b64encode(hashlib.sha256(spki).digest()).decode()):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


class Steps:
    """Numbered screenshots of one flow."""

    def __init__(self, driver, folder: Path):
        self.driver, self.folder, self.count = driver, folder, 0
        folder.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> None:
        self.count += 1
        self.driver.save_screenshot(str(self.folder / f"{self.count:02d}-{name}.png"))


def wait_until(driver, condition, what: str, seconds: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, seconds).until(lambda d: condition(d))
    except Exception:
        pytest.fail(f"{what}: still at {driver.current_url}\n{driver.find_element('tag name', 'body').text[:500]}",
                    pytrace=False)


def on_path(app: App, key: str):
    path = app.server.manifest["routes"][key]
    return lambda d: d.current_url.startswith(app.target.url) and urlsplit(d.current_url).path == path


def fill(driver, element_id: str, text: str) -> None:
    field = driver.find_element("id", element_id)
    field.clear()
    field.send_keys(text)


def logout_and_check(driver, app: App, steps: Steps) -> None:
    driver.get(app.route("logout"))
    after = app.server.manifest["routes"].get("after_logout", "/")
    wait_until(driver, lambda d: d.current_url.startswith(app.target.url) and urlsplit(d.current_url).path == after,
               "after logout the browser should be back on the app")
    steps.shot("logged-out")
    driver.get(app.route("page"))  # both sessions ended: the protected page leads to Scalekit's login page
    wait_until(driver, lambda d: "/ui/" in d.current_url, "a protected page after logout should ask to log in again")
    steps.shot("login-again")


@pytest.fixture
def fresh(driver, request):
    """The driver with no cookies, and a folder for this test's screenshots."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    folder = ARTIFACTS / request.node.callspec.params["name"] / request.node.originalname.removeprefix("test_")
    shutil.rmtree(folder, ignore_errors=True)
    print(f"\nscreenshots: {folder}")
    return driver, folder


@pytest.mark.parametrize("name", TEMPLATES)
def test_password_login(start_app, fresh, name):
    driver, folder = fresh
    app, steps = start_app(name), Steps(driver, folder)
    driver.get(app.route("page"))
    wait_until(driver, lambda d: "/ui/login" in d.current_url, "a protected page should lead to the login page")
    steps.shot("login-page")
    fill(driver, "email", "alice@acme.test")
    fill(driver, "password", "alice-password")
    driver.find_element("id", "password-submit").click()
    wait_until(driver, on_path(app, "page"), "after login the browser should be back on the protected page")
    steps.shot("protected-page")
    driver.get(app.route("profile"))
    wait_until(driver, lambda d: "alice@acme.test" in d.page_source and "enterprise" in d.page_source,
               "the profile page should show the email and the custom claim")
    steps.shot("profile")
    logout_and_check(driver, app, steps)


@pytest.mark.parametrize("name", TEMPLATES)
def test_social_login(start_app, fresh, name):
    driver, folder = fresh
    app, steps = start_app(name), Steps(driver, folder)
    driver.get(app.route("login") + "?provider=google")
    wait_until(driver, lambda d: "/ui/social" in d.current_url, "?provider=google should open the Google page")
    fill(driver, "email", "dana@gmail.test")
    steps.shot("google")
    driver.find_element("id", "social-allow").click()
    wait_until(driver, lambda d: d.current_url.startswith(app.target.url) and "/ui/" not in d.current_url,
               "after the social login the browser should be back on the app")
    driver.get(app.route("profile"))
    wait_until(driver, lambda d: "dana@gmail.test" in d.page_source, "the profile should show the social user")
    steps.shot("profile")
    logout_and_check(driver, app, steps)


@pytest.mark.parametrize("name", TEMPLATES)
def test_enterprise_login(start_app, fresh, name):
    driver, folder = fresh
    app, steps = start_app(name), Steps(driver, folder)
    driver.get(app.route("login") + f"?organization_id={ACME}")
    wait_until(driver, lambda d: "/ui/idp" in d.current_url, "?organization_id should open Acme's SSO page")
    fill(driver, "email", "bob@acme.test")
    steps.shot("acme-sso")
    driver.find_element("id", "idp-submit").click()
    wait_until(driver, lambda d: d.current_url.startswith(app.target.url) and "/ui/" not in d.current_url,
               "after the SSO login the browser should be back on the app")
    driver.get(app.route("profile"))
    wait_until(driver, lambda d: "bob@acme.test" in d.page_source and ACME in d.page_source,
               "the profile should show Bob of Acme")
    steps.shot("profile")
    logout_and_check(driver, app, steps)
