"""Headless Chromium through the login pages: password, a social provider, enterprise SSO (SAML, OIDC)."""
from __future__ import annotations

import base64
import hashlib
import shutil
import ssl
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import httpx
import jwt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from scalekit_local.state.seed import DEFAULT_SEED_PATH

from .helpers import (ACME_ORG, ACME_SAML, GLOBEX_OIDC, GLOBEX_ORG, PASSWORD_CONN, QuietHandler, loopback_base,
                      pkce_pair, query_of, serve_on_loopback)

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
GOOGLE_CONN = "conn_70000000000000201"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver (./run.sh setup installs them)"),
]


class CallbackApp:
    """The app side: a loopback server that records what the browser was redirected with."""

    def __init__(self):
        self.hits: list[str] = []
        app = self

        class Handler(QuietHandler):
            def do_GET(self):
                if not self.path.startswith("/favicon"):
                    app.hits.append(self.path)
                self.send_body(b"<html><body><h1 id='app'>app received the redirect</h1></body></html>", "text/html")

        self.server = serve_on_loopback(Handler)
        self.base = loopback_base(self.server)

    def last_query(self) -> dict[str, str]:
        return query_of(self.hits[-1])


@pytest.fixture(scope="module")
def app():
    server = CallbackApp()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def env(app, local_scalekit_factory, tmp_path_factory):
    """An instance whose client also accepts this test's callback server."""
    seed = yaml.safe_load(DEFAULT_SEED_PATH.read_text())
    seed["clients"][0]["redirect_uris"].append(app.base + "/callback")
    seed["clients"][0]["post_logout_redirect_uris"].append(app.base + "/logged-out")
    path = tmp_path_factory.mktemp("browser-seed") / "seed.yaml"
    path.write_text(yaml.safe_dump(seed))
    return local_scalekit_factory(seed=path)


@pytest.fixture(scope="module")
def driver(env):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    host, port = env.url.split("//")[1].split(":")
    pem = ssl.get_server_certificate((host, int(port)))
    spki = x509.load_pem_x509_certificate(pem.encode()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    profile = tempfile.mkdtemp(prefix="skl-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                # Trust exactly the local environment's certificate (the flag needs --user-data-dir).
                "--ignore-certificate-errors-spki-list=" + base64.b64encode(hashlib.sha256(spki).digest()).decode()):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(20)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


def start_login(driver, env, app, **params) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    state = "st-" + verifier[:8]
    query = {"response_type": "code", "client_id": env.client_id, "redirect_uri": app.base + "/callback",
             "scope": "openid profile email offline_access", "state": state, "nonce": "n-" + state,
             "code_challenge": challenge, "code_challenge_method": "S256", **params}
    driver.get(f"{env.url}/oauth/authorize?{urlencode(query)}")
    return verifier, state


def wait_for(driver, by, value):
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 10).until(EC.presence_of_element_located((by, value)))


def wait_url(driver, fragment: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(lambda d: fragment in d.current_url)


def finish_login(driver, env, app, verifier: str, state: str) -> dict:
    """The browser must now be on the app's callback; exchange the code like an app would."""
    from selenium.webdriver.common.by import By

    wait_for(driver, By.ID, "app")
    assert driver.current_url.startswith(app.base + "/callback?"), driver.current_url
    query = app.last_query()
    assert query.get("state") == state, (app.hits, driver.current_url)
    resp = httpx.post(env.url + "/oauth/token", verify=env.ca_bundle, data={
        "grant_type": "authorization_code", "code": query["code"], "redirect_uri": app.base + "/callback",
        "client_id": env.client_id, "client_secret": env.client_secret, "code_verifier": verifier})
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    tokens["id_claims"] = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    return tokens


def test_password_login_then_session_reuse_and_logout(driver, env, app):
    from selenium.webdriver.common.by import By

    verifier, state = start_login(driver, env, app)
    wait_url(driver, "/ui/login")
    driver.find_element(By.ID, "email").send_keys("alice@acme.test")
    driver.find_element(By.ID, "password").send_keys("wrong")
    driver.find_element(By.ID, "password-submit").click()
    assert "Incorrect email or password" in wait_for(driver, By.CSS_SELECTOR, "p.error").text
    driver.find_element(By.ID, "password").send_keys("alice-password")
    driver.find_element(By.ID, "password-submit").click()
    tokens = finish_login(driver, env, app, verifier, state)
    assert tokens["id_claims"]["email"] == "alice@acme.test"
    assert tokens["id_claims"]["amr"] == [PASSWORD_CONN] and tokens["id_claims"]["oid"] == ACME_ORG

    # The session cookie lets the next login through without a page.
    verifier, state = start_login(driver, env, app)
    assert finish_login(driver, env, app, verifier, state)["id_claims"]["sub"] == tokens["id_claims"]["sub"]

    logout = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": app.base + "/logged-out", "state": "bye"}
    driver.get(f"{env.url}/oidc/logout?{urlencode(logout)}")
    wait_url(driver, "/logged-out")
    assert driver.current_url == app.base + "/logged-out?state=bye"
    start_login(driver, env, app, prompt="none")
    assert app.last_query()["error"] == "login_required"


def test_social_provider_login(driver, env, app):
    from selenium.webdriver.common.by import By

    verifier, state = start_login(driver, env, app, prompt="login")
    driver.find_element(By.ID, "provider-google").click()
    wait_url(driver, "/ui/social")
    assert "Sign in with Google" in driver.title
    email = driver.find_element(By.ID, "email")
    email.clear()
    email.send_keys("dana@gmail.test")
    driver.find_element(By.ID, "social-allow").click()
    claims = finish_login(driver, env, app, verifier, state)["id_claims"]
    assert claims["email"] == "dana@gmail.test" and claims["amr"] == [GOOGLE_CONN]
    assert claims["oid"].startswith("org_")  # a personal organization for the new user


@pytest.mark.parametrize("route, conn, kind, org, email", [
    ({"sso_email": "carol@globex.test"}, GLOBEX_OIDC, "OIDC", GLOBEX_ORG, "carol@globex.test"),
    ({"organization_id": ACME_ORG}, ACME_SAML, "SAML", ACME_ORG, "bob@acme.test"),
])
def test_enterprise_sso_login(driver, env, app, route, conn, kind, org, email):
    from selenium.webdriver.common.by import By

    params = {k: v for k, v in route.items() if k != "sso_email"}
    verifier, state = start_login(driver, env, app, prompt="login", **params)
    if "sso_email" in route:  # home-realm discovery from the login page
        driver.find_element(By.ID, "sso-email").send_keys(route["sso_email"])
        driver.find_element(By.ID, "sso-submit").click()
    wait_url(driver, "/ui/idp")
    assert driver.find_element(By.ID, "connection-type").text == kind
    assert driver.find_element(By.ID, "connection-id").text == conn
    field = driver.find_element(By.ID, "email")
    field.clear()
    field.send_keys(email)
    driver.find_element(By.ID, "idp-submit").click()
    claims = finish_login(driver, env, app, verifier, state)["id_claims"]
    assert claims["email"] == email and claims["amr"] == [conn] and claims["oid"] == org
