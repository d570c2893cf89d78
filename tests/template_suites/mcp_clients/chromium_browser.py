"""BROWSER for the MCP Inspector: headless Chromium (Debian's chromium + chromedriver, via selenium).

    chromium_browser.py AUTHORIZATION_URL

Opens the URL, signs in on whatever login page it meets (a custom-auth app's own page, or the local
environment's) as MCP_TEST_LOGIN (email:password), approves the consent page, and stops once Chromium
has loaded the client's redirect URI (the Inspector's callback listener). It trusts exactly the
certificate of SCALEKIT_ENVIRONMENT_URL. Progress goes to the file CHROMIUM_LOG names.
"""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import ssl
import sys
import tempfile
import time
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TIMEOUT = 60


def log(message: str) -> None:
    with open(os.environ.get("CHROMIUM_LOG", os.devnull), "a", encoding="utf-8") as out:
        out.write(message + "\n")


def spki_pin(url: str) -> str:
    parts = urlsplit(url)
    pem = ssl.get_server_certificate((parts.hostname, parts.port or 443))
    spki = x509.load_pem_x509_certificate(pem.encode()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def main() -> int:
    url = sys.argv[1]
    redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    email, _, password = os.environ.get("MCP_TEST_LOGIN", "alice@acme.test:alice-password").partition(":")
    environment = os.environ["SCALEKIT_ENVIRONMENT_URL"]
    profile = tempfile.mkdtemp(prefix="mcp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    if environment.startswith("https://"):
        options.add_argument("--ignore-certificate-errors-spki-list=" + spki_pin(environment))
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        driver.get(url)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            current = driver.current_url
            if current.startswith(redirect_uri):
                log(f"reached the redirect URI: {urlsplit(current).path}")
                return 0
            passwords = driver.find_elements(By.CSS_SELECTOR, "input[type=password]")
            approve = driver.find_elements(By.CSS_SELECTOR, "button[value=approve]")
            if passwords:
                form = passwords[0].find_element(By.XPATH, "./ancestor::form")
                form.find_element(By.CSS_SELECTOR, "input[type=email], input[name=email]").send_keys(email)
                passwords[0].send_keys(password)
                page = "the app's page" if not current.startswith(environment) else "Scalekit's page"
                form.find_element(By.CSS_SELECTOR, "button[type=submit], button:not([type])").click()
                log(f"signed in on {page} ({urlsplit(current).path}) as {email}")
            elif approve:
                approve[0].click()
                log("approved the consent page")
            time.sleep(0.2)
        log(f"timed out at {driver.current_url.split('?')[0]}: {driver.find_element(By.TAG_NAME, 'body').text[:300]}")
        return 1
    except WebDriverException as exc:
        log(f"chromium failed: {exc.msg}")
        return 1
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
