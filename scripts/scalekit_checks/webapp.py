"""Black-box checks of a full-stack web app signed in with Scalekit, run from outside like a browser
and like an attacker. scripts/test_web_app.py reports them for the user's own app;
tests/template_suites/test_fullstack_templates.py asserts them on every template.

    target = Target(app_url, routes, env_url, client_id, client_secret, ...)
    Browser(target)                       a cookie jar that follows redirects one hop at a time
    app_login(target, browser, query=...) a real login through the app and the local environment's pages
    check_*(target, ...) -> str           one behaviour or attack; raises CheckFailed with what went wrong

Logins go through the local Scalekit environment's login pages over HTTP (or its --auto-login),
so these checks need it; its test-only routes (/_local/stats, /_local/token-matrix) give refresh
counts and forged tokens.
"""
from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

import requests

from . import flow, net
from .report import CheckFailed, Exit

OPEN_REDIRECT_PARAMS = ("returnTo", "next", "redirect", "return_to")
# What browsers turn into another site: absolute and scheme-relative URLs, backslashes (read as
# slashes), a leading space or tab, and URLs without slashes after the scheme.
OPEN_REDIRECT_PAYLOADS = ("https://evil.test/", "//evil.test/", "/\\evil.test/", "\\/evil.test/", "/\t/evil.test/",
                          " //evil.test/", "https:evil.test", "/%2F%2Fevil.test/", "javascript:alert(1)//")
USER_TOKEN_VARIANTS = ("alg_none", "hs256_public_key", "forged_signature", "unknown_kid", "expired", "not_yet_valid",
                       "iss_other_environment", "aud_other_api", "aud_client_credentials")
REDIRECTS = (301, 302, 303, 307, 308)
MAX_HOPS = 12


@dataclass
class Target:
    """The app under test and the Scalekit environment it signs in with."""

    url: str                          # the app's origin, e.g. http://localhost:3000
    routes: dict[str, str]            # login, callback, logout, api, page, after_logout (template.json's names)
    env_url: str
    client_id: str | None = None
    client_secret: str | None = None
    verify: str | bool = True         # CA bundle for the environment
    timeout: float = 10.0
    user: tuple[str, str] = ("alice@acme.test", "alice-password")
    attacker: tuple[str, str] = ("carol@globex.test", "carol-password")
    secrets: set[str] = field(default_factory=set)  # tokens seen, to keep out of messages
    auto_login: bool = False          # set when the environment signs in without pages (--auto-login)
    sso_domain: str | None = None     # modular SSO: logins must reach this domain's SSO connection
    provider: str | None = None       # sign in with this social provider's button on the login page
    logout_method: str = "GET"
    identity_providers: list[dict] = field(default_factory=list)  # IdP pages seen: {connection_id, domains}

    def __post_init__(self):
        self.url = self.url.rstrip("/")
        self.env_url = self.env_url.rstrip("/")

    def route(self, name: str) -> str:
        return self.url + self.routes[name]

    def login_url(self, email: str, query_string: str = "") -> str:
        """The login route for `email` ({email} in the path is replaced: an SSO start that takes the
        user's email), with `query_string` ("?a=b") joined by & when the path has a query already."""
        url = self.url + self.routes["login"].replace("{email}", quote(email, safe="@"))
        if query_string:
            url += ("&" if "?" in url else "?") + query_string.lstrip("?&")
        return url

    @property
    def callback_url(self) -> str:
        return self.route("callback")

    @property
    def after_logout_url(self) -> str:
        return self.url + self.routes.get("after_logout", "/")


def fail(message: str, data: dict | None = None) -> CheckFailed:
    return CheckFailed(Exit.PROTOCOL, message, data)


# ---- URLs as browsers read them ----------------------------------------------------------------
def resolve(base: str, location: str) -> str:
    """The URL a browser goes to for `Location: location` (WHATWG URL parsing, the parts that matter
    for redirects): surrounding spaces and controls are stripped, tabs and newlines removed, and
    backslashes are slashes in http(s) URLs."""
    value = location.strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17"
                           "\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f \t\r\n")
    value = re.sub(r"[\t\r\n]", "", value).replace("\\", "/")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", value)
    if scheme and scheme.group(1).lower() in ("http", "https") and not value[len(scheme.group(0)):].startswith("//"):
        rest = value[len(scheme.group(0)):]  # "https:evil.test" is https://evil.test/ when the base is another origin
        base_scheme = urlsplit(base).scheme
        if scheme.group(1).lower() != base_scheme:
            value = f"{scheme.group(1)}://{rest.lstrip('/')}"
        else:
            value = rest
    return urljoin(base, value)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


# ---- a browser ---------------------------------------------------------------------------------
@dataclass
class Hop:
    method: str
    url: str
    status: int
    location: str | None      # resolved
    set_cookies: list[dict]


def parse_set_cookie(header: str) -> dict:
    """{name, value, attributes (lower-case keys), deleted} of one Set-Cookie header."""
    first, *rest = header.split(";")
    name, _, value = first.partition("=")
    attributes = {}
    for part in rest:
        key, _, val = part.strip().partition("=")
        attributes[key.strip().lower()] = val.strip()
    deleted = attributes.get("max-age", "1").strip() in ("0", "-1") or value.strip().strip('"') == ""
    if "expires" in attributes and not deleted:
        from email.utils import parsedate_to_datetime

        try:
            deleted = parsedate_to_datetime(attributes["expires"]).timestamp() < time.time()
        except (TypeError, ValueError):
            pass
    return {"name": name.strip(), "value": value.strip(), "attributes": attributes, "deleted": deleted}


class Browser:
    """A cookie jar that requests one hop at a time and never leaves the app or the environment."""

    def __init__(self, target: Target):
        self.target = target
        self.session = requests.Session()
        self.hops: list[Hop] = []

    def request(self, method: str, url: str, what: str = "request", **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", (self.target.timeout, self.target.timeout))
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("verify", self.target.verify)  # per request: REQUESTS_CA_BUNDLE overrides a session's
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            failure = net.network_failure(exc, what, url, self.target.timeout)
            raise failure or CheckFailed(Exit.NETWORK, f"{what}: {url} failed: {type(exc).__name__}") from None
        location = response.headers.get("location")
        cookies = [parse_set_cookie(h) for h in response.raw.headers.getlist("set-cookie")] if response.raw else []
        self.hops.append(Hop(method, url, response.status_code, resolve(url, location) if location else None, cookies))
        return response

    def get(self, url: str, what: str = "request", **kwargs) -> requests.Response:
        return self.request("GET", url, what, **kwargs)

    def follow(self, response: requests.Response, what: str, stop_at: str | None = None) -> requests.Response:
        """Follow redirects from `response` while they stay on the app or the environment; stop
        before requesting a URL that starts with `stop_at` (returned as the last response)."""
        allowed = {origin(self.target.url), origin(self.target.env_url)}
        for _ in range(MAX_HOPS):
            if response.status_code not in REDIRECTS or not response.headers.get("location"):
                return response
            url = resolve(response.url, response.headers["location"])
            if origin(url) not in allowed:
                raise fail(f"{what}: a redirect leads off the app to {url[:120]}", {"location": url[:200]})
            if stop_at and url.startswith(stop_at):
                return response
            response = self.get(url, what)
        raise fail(f"{what}: more than {MAX_HOPS} redirects")

    def cookies(self) -> dict[str, str]:
        return {c.name: c.value for c in self.session.cookies}

    def set_cookies(self, values: dict[str, str]) -> None:
        """Cookies of the app's host, stored as the jar stores the ones the app sets."""
        host = urlsplit(self.target.url).hostname or ""
        domain = host if "." in host else host + ".local"  # http.cookiejar's name for dotless hosts
        for name, value in values.items():
            self.session.cookies.set(name, value, domain=domain, path="/")

    def replace_cookies(self, values: dict[str, str]) -> None:
        self.session.cookies.clear()
        self.set_cookies(values)


class _Forms(HTMLParser):
    """The forms of a page: [{id, action, fields: {name: value}}]."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"id": attrs.get("id"), "action": attrs.get("action") or "", "fields": {}})
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""


def page_forms(html: str) -> dict[str, dict]:
    parser = _Forms()
    parser.feed(html)
    return {f["id"]: f for f in parser.forms if f["id"]}


# ---- logging in ----------------------------------------------------------------------------------
def scalekit_login(target: Target, browser: Browser, authorize_url: str, email: str, password: str | None) -> str:
    """Sign in on the local environment's pages (password, social provider or enterprise IdP page,
    whichever the authorization request leads to) and return the callback URL it redirects to,
    without requesting it."""
    fresh = not any(origin(h.url) == origin(target.env_url) for h in browser.hops)
    response = browser.get(authorize_url, "login at Scalekit")
    for step in range(MAX_HOPS):
        location = response.headers.get("location")
        if response.status_code in REDIRECTS and location:
            url = resolve(response.url, location)
            if url.startswith(target.callback_url):
                if step == 0 and fresh and not query(url).get("error"):
                    target.auto_login = True  # no page even for a browser Scalekit has never seen
                return url
            if origin(url) != origin(target.env_url):
                raise fail(f"login at Scalekit: redirected to {url[:120]}, neither the environment nor the "
                           f"app's callback {target.callback_url}")
            response = browser.get(url, "login at Scalekit")
            continue
        if response.status_code != 200:
            raise CheckFailed(Exit.AUTH, f"login at Scalekit: HTTP {response.status_code}: "
                                         f"{flow.describe_refusal(response)}")
        forms = page_forms(response.text)
        form = forms.get("idp-form") or forms.get("social-form") or forms.get("password-form")
        if form is None:
            raise fail(f"login at Scalekit: {response.url[:80]} has no login form this check knows")
        if form["id"] == "password-form" and target.provider:
            button = re.search(rf'id="provider-{re.escape(target.provider)}"[^>]*href="([^"]+)"', response.text)
            if not button:
                raise CheckFailed(Exit.CONFIG, f"login at Scalekit: the login page has no {target.provider} button "
                                               "(the local environment's providers: google, github, microsoft, "
                                               "gitlab, linkedin, salesforce)")
            response = browser.get(urljoin(response.url, button.group(1).replace("&amp;", "&")), "login at Scalekit")
            continue
        if form["id"] == "password-form" and target.sso_domain:
            raise fail(f"login at Scalekit: the login reached Scalekit's email-and-password page, not the SSO "
                       f"connection of {target.sso_domain}: send organization_id, connection_id or domain_hint "
                       "(or login_hint with the user's email) in the authorization URL")
        if form["id"] == "idp-form":
            domains = re.search(r"<dt>Domains</dt><dd>([^<]*)</dd>", response.text)
            target.identity_providers.append({
                "connection_id": form["fields"].get("connection_id"),
                "domains": [d.strip() for d in (domains.group(1) if domains else "").split(",") if d.strip()]})
        fields = dict(form["fields"], email=email)
        if form["id"] == "password-form":
            fields["password"] = password or ""
        else:
            fields["action"] = "approve"
        response = browser.request("POST", urljoin(response.url, form["action"]), "login at Scalekit", data=fields)
    raise fail("login at Scalekit: too many steps")


@dataclass
class Login:
    browser: Browser
    authorize_url: str
    params: dict[str, str]              # of the authorization request
    pre_login_cookies: dict[str, str]   # the browser's cookies just before the callback
    callback_url: str
    callback: requests.Response | None = None
    landing: requests.Response | None = None
    session_cookies: dict[str, str] = field(default_factory=dict)   # set at the callback
    set_cookies: list[dict] = field(default_factory=list)           # every Set-Cookie of login and callback


def start_login(target: Target, browser: Browser | None = None, query_string: str = "",
                email: str | None = None) -> tuple[Browser, str]:
    """GET the app's login route; return the browser and the authorization URL it redirected to."""
    browser = browser or Browser(target)
    response = browser.get(target.login_url(email or target.user[0], query_string), "login route")
    for _ in range(MAX_HOPS):  # a page of the app may hand over to a route handler first
        location = response.headers.get("location")
        if response.status_code not in REDIRECTS or not location or \
                origin(resolve(response.url, location)) != origin(target.url):
            break
        response = browser.get(resolve(response.url, location), "login route")
    location = response.headers.get("location")
    if response.status_code not in REDIRECTS or not location:
        raise fail(f"login route: GET {target.routes['login']} answered HTTP {response.status_code}, not a redirect to "
                   "Scalekit's /oauth/authorize")
    url = resolve(response.url, location)
    if not url.startswith(target.env_url + "/oauth/authorize?"):
        raise fail(f"login route: redirects to {url[:100]}, not to {target.env_url}/oauth/authorize")
    return browser, url


def app_login(target: Target, browser: Browser | None = None, query_string: str = "", email: str | None = None,
              password: str | None = None, deliver: bool = True) -> Login:
    """A whole login through the app. With deliver=False it stops before the callback."""
    email = email or target.user[0]
    password = password if password is not None else (target.user[1] if email == target.user[0] else
                                                      target.attacker[1] if email == target.attacker[0] else None)
    first = len((browser.hops if browser else []))
    browser, authorize_url = start_login(target, browser, query_string, email)
    callback_url = scalekit_login(target, browser, authorize_url, email, password)
    login = Login(browser, authorize_url, query(authorize_url), browser.cookies(), callback_url)
    if deliver:
        deliver_callback(login)
    login.set_cookies = [c for hop in browser.hops[first:] if origin(hop.url) == origin(target.url)
                         for c in hop.set_cookies]
    return login


def deliver_callback(login: Login) -> None:
    browser = login.browser
    target = browser.target
    first = len(browser.hops)
    login.callback = browser.get(login.callback_url, "callback")
    if login.callback.status_code >= 500:
        raise fail(f"callback: HTTP {login.callback.status_code} for a valid login")
    login.landing = browser.follow(login.callback, "after the callback")
    set_here = [c for hop in browser.hops[first:] if origin(hop.url) == origin(target.url) for c in hop.set_cookies]
    jar = browser.cookies()
    login.session_cookies = {c["name"]: jar[c["name"]] for c in set_here if not c["deleted"] and c["name"] in jar}


def expect_status(response: requests.Response, expected: int | tuple[int, ...], what: str) -> None:
    wanted = (expected,) if isinstance(expected, int) else expected
    if response.status_code not in wanted:
        raise fail(f"{what}: HTTP {response.status_code}, expected {' or '.join(map(str, wanted))}",
                   {"http_status": response.status_code})


def refused(status: int) -> bool:
    """Kept out: 401 (what the API route should answer), 403, or a redirect to a login. A 5xx is not
    a refusal: an error page is a crash, not a check."""
    return status in (401, 403) or 300 <= status < 400


def api_status(target: Target, cookies: dict[str, str] | None = None, bearer: str | None = None) -> int:
    browser = Browser(target)
    browser.set_cookies(cookies or {})
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return browser.get(target.route("api"), "api route", headers=headers).status_code


def redirects_to_login(target: Target, response: requests.Response) -> bool:
    location = response.headers.get("location")
    if response.status_code not in REDIRECTS or not location:
        return False
    url = resolve(response.url, location)
    paths = {urlsplit(target.route("login")).path, urlsplit(target.url + target.routes.get("login_page", "/")).path}
    to_login_route = origin(url) == origin(target.url) and urlsplit(url).path in paths - {"/"}
    return to_login_route or url.startswith(target.env_url + "/oauth/authorize?")


def session_ok(target: Target, login: Login) -> None:
    response = login.browser.get(target.route("api"), "api route")
    if response.status_code != 200:
        raise fail(f"after login the API route answers HTTP {response.status_code}, not 200: the callback did not "
                   "set a working session")


# ---- the environment's test routes -----------------------------------------------------------
def env_stats(target: Target) -> dict[str, int]:
    response = requests.get(target.env_url + "/_local/stats", verify=target.verify, timeout=target.timeout)
    if response.status_code != 200:
        raise CheckFailed(Exit.CONFIG, f"{target.env_url}/_local/stats answered HTTP {response.status_code}: these "
                                       "checks need the local Scalekit environment (scripts/local_scalekit.py)")
    return response.json()


def refresh_count(target: Target) -> int:
    return int(env_stats(target).get("token.refresh_token", 0))


def access_token_ttl(target: Target) -> int | None:
    """The environment's access-token lifetime, from a client-credentials token's expires_in."""
    if not (target.client_id and target.client_secret):
        return None
    response = requests.post(target.env_url + "/oauth/token", verify=target.verify, timeout=target.timeout,
                             data={"grant_type": "client_credentials", "client_id": target.client_id,
                                   "client_secret": target.client_secret})
    return int(response.json()["expires_in"]) if response.status_code == 200 else None


def own_tokens(target: Target, email: str | None = None) -> dict:
    """Tokens for the app's client, from a login this check runs itself (its own state, nonce and
    PKCE, the app's redirect URI) and exchanges with the client secret: a real bearer token."""
    if not (target.client_id and target.client_secret):
        raise CheckFailed(Exit.CONFIG, "needs SCALEKIT_CLIENT_ID and SCALEKIT_CLIENT_SECRET to mint a real token")
    verifier, challenge = flow.pkce_pair()
    params = {"response_type": "code", "client_id": target.client_id, "redirect_uri": target.callback_url,
              "scope": "openid profile email offline_access", "state": secrets.token_urlsafe(16),
              "nonce": secrets.token_urlsafe(16), "code_challenge": challenge, "code_challenge_method": "S256"}
    browser = Browser(target)
    email = email or target.user[0]
    password = target.user[1] if email == target.user[0] else target.attacker[1]
    callback = scalekit_login(target, browser, f"{target.env_url}/oauth/authorize?{urlencode(params)}", email, password)
    response = browser.request("POST", target.env_url + "/oauth/token", "token exchange", data={
        "grant_type": "authorization_code", "code": query(callback)["code"], "redirect_uri": target.callback_url,
        "client_id": target.client_id, "client_secret": target.client_secret, "code_verifier": verifier})
    if response.status_code != 200:
        raise net.http_status_failure("token exchange", response.status_code, response.text[:2000], response.url)
    tokens = response.json()
    target.secrets.update(v for k, v in tokens.items() if k.endswith("token"))
    return tokens


# ---- forged tokens -----------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_tokens(target: Target) -> dict[str, str]:
    """{variant: token} from the local environment's token matrix for the app's user access tokens:
    wrong audience or issuer, forged signature, unknown kid, alg none, HS256 with the public key,
    expired, not yet valid (reference/local-environment-details.md, Token matrix)."""
    from .token_matrix import MatrixError, fetch_matrix

    try:
        matrix = fetch_matrix(target.env_url, "user", [target.client_id or ""],
                              ca_bundle=target.verify if isinstance(target.verify, str) else None,
                              timeout=target.timeout)
    except MatrixError as exc:
        raise CheckFailed(Exit.CONFIG, f"{exc}; forged tokens come from the local environment's token matrix") \
            from None
    tokens = {v.name: v.token for v in matrix if v.name in USER_TOKEN_VARIANTS}
    target.secrets.update(tokens.values())
    return tokens


def tampered(value: str) -> str:
    """The same value with one character in the middle changed (still valid base64url)."""
    middle = len(value) // 2
    swap = "A" if value[middle] != "A" else "B"
    return value[:middle] + swap + value[middle + 1:]


# ---- behaviour ---------------------------------------------------------------------------------------
def check_unauthenticated(target: Target) -> str:
    browser = Browser(target)
    page = browser.get(target.route("page"), "protected page")
    if not redirects_to_login(target, page):
        raise fail(f"protected page {target.routes['page']} without a session: HTTP {page.status_code}"
                   + (f" to {page.headers.get('location')}" if page.headers.get("location") else "")
                   + f", not a redirect to {target.routes['login']}")
    api = browser.get(target.route("api"), "api route")
    expect_status(api, 401, f"API route {target.routes['api']} without a session")
    login = target.routes.get("login_page") or target.routes["login"]
    return f"{target.routes['page']} redirects to {login}; {target.routes['api']} answers 401"


def check_login_redirect(target: Target) -> str:
    _, first = start_login(target)
    _, second = start_login(target)
    params, other = query(first), query(second)
    problems = []
    if params.get("response_type") != "code":
        problems.append(f"response_type is {params.get('response_type')!r}, not 'code'")
    if target.client_id and params.get("client_id") != target.client_id:
        problems.append(f"client_id is {params.get('client_id')!r}, not {target.client_id}")
    if params.get("redirect_uri") != target.callback_url:
        problems.append(f"redirect_uri is {params.get('redirect_uri')!r}, not {target.callback_url}")
    scopes = params.get("scope", "").split()
    if target.sso_domain:  # the app keeps its own sessions: no refresh token needed
        if "openid" not in scopes:
            problems.append(f"scope {' '.join(scopes)!r} lacks openid (no ID token)")
    elif "openid" not in scopes or "offline_access" not in scopes:
        problems.append(f"scope {' '.join(scopes)!r} lacks openid or offline_access (no ID token or no refresh token)")
    for name in ("state", "nonce"):
        if len(params.get(name, "")) < 16:
            problems.append(f"{name} is missing or shorter than 16 characters")
        elif params[name] == other.get(name):
            problems.append(f"{name} is the same in two logins")
    if params.get("code_challenge_method") != "S256" or not re.fullmatch(r"[A-Za-z0-9_-]{43}",
                                                                          params.get("code_challenge", "")):
        problems.append("no PKCE: code_challenge with code_challenge_method=S256 is missing")
    elif params["code_challenge"] == other.get("code_challenge"):
        problems.append("code_challenge is the same in two logins")
    if problems:
        raise fail("login redirect: " + "; ".join(problems), {"params": sorted(params)})
    if target.sso_domain:
        return "state, nonce, PKCE S256 (all fresh per login), redirect_uri and openid"
    return "state, nonce, PKCE S256 (all fresh per login), redirect_uri and scopes with offline_access"


def check_cookie_flags(target: Target, login: Login) -> str:
    secure_expected = target.url.startswith("https://")
    problems, seen = [], []
    for cookie in login.set_cookies:
        if cookie["deleted"]:
            continue
        attrs = cookie["attributes"]
        seen.append(cookie["name"])
        if "httponly" not in attrs:
            problems.append(f"{cookie['name']} lacks HttpOnly")
        if attrs.get("samesite", "").lower() != "lax":
            problems.append(f"{cookie['name']} has SameSite={attrs.get('samesite') or '(none)'}, not Lax")
        if secure_expected and "secure" not in attrs:
            problems.append(f"{cookie['name']} lacks Secure on an https app")
        if not secure_expected and "secure" in attrs:
            problems.append(f"{cookie['name']} is Secure on plain http: some browsers drop it, so the session "
                            "does not stick (set Secure only when the app URL is https)")
    if not seen:
        raise fail("cookie flags: the login set no cookie")
    if problems:
        raise fail("cookie flags: " + "; ".join(problems))
    flags = "HttpOnly, SameSite=Lax" + (", Secure" if secure_expected else ", not Secure (plain http)")
    return f"{', '.join(sorted(set(seen)))}: {flags}"


def check_login(target: Target) -> tuple[str, Login]:
    seen = len(target.identity_providers)
    login = app_login(target)
    if not login.session_cookies:
        raise fail("login: the callback set no cookie, so there is no session")
    session_ok(target, login)
    page = login.browser.get(target.route("page"), "protected page")
    expect_status(page, 200, f"protected page {target.routes['page']} after login")
    via = ""
    if target.sso_domain:
        idps = target.identity_providers[seen:]
        if not idps:
            raise fail(f"login: signed in without passing an identity provider page, not through the SSO "
                       f"connection of {target.sso_domain}")
        if target.sso_domain not in idps[-1]["domains"]:
            raise fail(f"login: went to connection {idps[-1]['connection_id']} (domains "
                       f"{', '.join(idps[-1]['domains']) or 'none'}), not the one of {target.sso_domain}")
        via = f" (SSO connection {idps[-1]['connection_id']} of {target.sso_domain})"
    elif target.provider:
        via = f" (social login with {target.provider})"
    return f"callback set {', '.join(sorted(login.session_cookies))}{via}; page and API answer 200", login


def check_session_id_changes(target: Target, reference: Login) -> str:
    """Session fixation: cookies planted before the login (an attacker's values) are replaced."""
    planted = {name: tampered(value) for name, value in reference.session_cookies.items()}
    browser = Browser(target)
    browser.set_cookies(planted)
    login = app_login(target, browser)
    after = browser.cookies()
    kept = [name for name, value in planted.items() if after.get(name) == value]
    if kept:
        raise fail(f"session id: the login kept the cookie value planted before it ({', '.join(kept)})")
    before = login.pre_login_cookies
    same = [n for n, v in login.session_cookies.items() if before.get(n) == v]
    if same:
        raise fail(f"session id: {', '.join(same)} has the same value before and after the login")
    if not refused(api_status(target, before)):
        raise fail("session id: the cookies from before the login already open the API")
    session_ok(target, login)
    return "new session cookie values at login; the pre-login cookies open nothing"


def logout_request(target: Target, browser: Browser, query_string: str = "") -> requests.Response:
    """The app's logout as its button sends it: GET, or a form POST from the app's own page."""
    url = target.route("logout") + query_string
    if target.logout_method == "POST":
        return browser.request("POST", url, "logout route", headers={"Origin": origin(target.url),
                                                                       "Referer": target.url + "/"})
    return browser.get(url, "logout route")


def check_app_logout(target: Target, login: Login) -> str:
    """Modular SSO: the app's own session ends at logout (Scalekit keeps no session for the app)."""
    browser = login.browser
    old_cookies = browser.cookies()
    response = logout_request(target, browser)
    if response.status_code >= 400:
        raise fail(f"logout: {target.logout_method} {target.routes['logout']} answered HTTP {response.status_code}")
    end = browser.follow(response, "after logout")
    if end.status_code >= 500:
        raise fail(f"logout: ended at {end.url} with HTTP {end.status_code}")
    if not refused(browser.get(target.route("api"), "api route").status_code):
        raise fail("logout: the API still answers with the browser's cookies")
    if not refused(api_status(target, old_cookies)):
        raise fail("logout: the session cookie from before the logout still opens the API (the session must end "
                   "on the server, not only in the browser)")
    return "the session ends on the server: the old cookie opens nothing"


def check_logout(target: Target, login: Login) -> str:
    if target.sso_domain:
        return check_app_logout(target, login)
    browser = login.browser
    old_cookies = browser.cookies()
    response = browser.get(target.route("logout"), "logout route")
    location = resolve(response.url, response.headers.get("location") or "")
    if response.status_code not in REDIRECTS or not location.startswith(target.env_url + "/oidc/logout?"):
        raise fail(f"logout: HTTP {response.status_code} to {location[:100] or '(nowhere)'}, not a browser "
                   f"redirect to {target.env_url}/oidc/logout (only the browser's request carries Scalekit's "
                   "session cookie)")
    params = query(location)
    if params.get("post_logout_redirect_uri") != target.after_logout_url:
        raise fail(f"logout: post_logout_redirect_uri is {params.get('post_logout_redirect_uri')!r}, not "
                   f"{target.after_logout_url}")
    if not params.get("id_token_hint"):
        raise fail("logout: no id_token_hint, so Scalekit refuses the post-logout redirect")
    cleared = {c["name"] for c in browser.hops[-1].set_cookies if c["deleted"]}
    not_cleared = [n for n in login.session_cookies if n not in cleared]
    if not_cleared and not refused(api_status(target, old_cookies)):
        raise fail(f"logout: the response neither clears {', '.join(not_cleared)} nor ends the session behind it")
    end = browser.follow(response, "logout at Scalekit")
    if end.url.rstrip("/") != target.after_logout_url.rstrip("/") or end.status_code >= 400:
        raise fail(f"logout: ended at {end.url} (HTTP {end.status_code}), not {target.after_logout_url}")
    if not refused(browser.get(target.route("api"), "api route").status_code):
        raise fail("logout: the API still answers with the browser's cookies")
    # Scalekit's session: a new login in this browser must show the login page again.
    _, authorize = start_login(target, browser)
    again = browser.get(authorize, "login after logout")
    again_at = resolve(again.url, again.headers.get("location") or "")
    if again_at.startswith(target.callback_url) and not target.auto_login:
        raise fail("logout: Scalekit's session is still alive (a new login completed without a login page)")
    scalekit = "not checked (--auto-login signs in without a session)" if target.auto_login else "ended"
    return f"app session cleared; Scalekit's session {scalekit} through the browser (id_token_hint, registered URL)"


# ---- refresh (short access tokens) -----------------------------------------------------------------
class ExpiringSessions:
    """Sessions logged in together, then used after their access tokens expired: one for a single
    refresh, one for ten concurrent requests, one logged out before expiry."""

    def __init__(self, target: Target, ttl: int):
        self.target = target
        self.single = app_login(target)
        self.concurrent = app_login(target)
        self.logged_out = app_login(target)
        for login in (self.single, self.concurrent, self.logged_out):
            session_ok(target, login)
        self.logged_out_cookies = self.logged_out.browser.cookies()
        check_logout(target, self.logged_out)
        self.ready_at = time.time() + ttl + 1.5

    def wait(self) -> None:
        time.sleep(max(0.0, self.ready_at - time.time()))


def check_refresh(target: Target, sessions: ExpiringSessions) -> str:
    before = refresh_count(target)
    response = sessions.single.browser.get(target.route("api"), "api route")
    if response.status_code != 200:
        raise fail(f"refresh: after the access token expired the API answers HTTP {response.status_code}, not 200")
    after = refresh_count(target)
    if after - before != 1:
        raise fail(f"refresh: {after - before} refreshes at Scalekit for one request after expiry, expected 1")
    again = sessions.single.browser.get(target.route("api"), "api route")
    if again.status_code != 200 or refresh_count(target) != after:
        raise fail("refresh: the next request refreshed again or failed: the new tokens were not kept")
    return "the first request after expiry refreshed once; the next used the new tokens"


def parallel(count: int, work) -> list:
    barrier = threading.Barrier(count)

    def run(index):
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def check_concurrent_refresh(target: Target, sessions: ExpiringSessions, count: int = 10) -> str:
    cookies = sessions.concurrent.browser.cookies()
    before = refresh_count(target)
    statuses = parallel(count, lambda _: api_status(target, cookies))
    refreshes = refresh_count(target) - before
    if any(s != 200 for s in statuses):
        raise fail(f"concurrent refresh: {count} requests at expiry answered {statuses}; each must be 200 "
                   "(a rotated refresh token works once: refresh once per session)")
    if refreshes != 1:
        raise fail(f"concurrent refresh: {refreshes} refreshes at Scalekit for {count} requests of one session, "
                   "expected 1 (the second use of a rotated refresh token ends the session)")
    return f"{count} concurrent requests at expiry: all 200, one refresh"


def check_refresh_after_logout(target: Target, sessions: ExpiringSessions) -> str:
    before = refresh_count(target)
    status = api_status(target, sessions.logged_out_cookies)
    if not refused(status):
        raise fail(f"after logout and expiry, the old cookies still open the API (HTTP {status}): the refresh "
                   "token must die with the Scalekit session")
    return f"old cookies after logout and expiry: HTTP {status}" + (
        " (the refresh was refused)" if refresh_count(target) > before else "")


# ---- attacks ---------------------------------------------------------------------------------------------
def _no_session(target: Target, browser: Browser, response: requests.Response, what: str) -> None:
    if response.status_code >= 500:
        raise fail(f"{what}: the callback answered HTTP {response.status_code} (an error page, not a refusal)")
    status = browser.get(target.route("api"), "api route").status_code
    if not refused(status):
        raise fail(f"{what}: the callback signed the browser in (the API then answers HTTP {status})")


def check_state(target: Target) -> str:
    for what, change in (("missing state", lambda p: p.pop("state", None)),
                         ("mismatched state", lambda p: p.update(state=secrets.token_urlsafe(24)))):
        login = app_login(target, deliver=False)
        params = query(login.callback_url)
        change(params)
        response = login.browser.get(f"{target.callback_url}?{urlencode(params)}", "callback")
        _no_session(target, login.browser, response, what)
    return "a callback with a missing or a different state signs no one in"


def check_login_csrf(target: Target) -> str:
    """The attacker's own code and state, delivered to the victim's browser."""
    attacker = app_login(target, email=target.attacker[0], deliver=False)
    for victim_started_login in (False, True):
        victim = Browser(target)
        if victim_started_login:
            start_login(target, victim)
        response = victim.get(attacker.callback_url, "callback")
        _no_session(target, victim, response, "login CSRF")
    return "another browser's code and state sign no one in (with or without a login of its own)"


def check_leaked_state(target: Target) -> str:
    """The victim's authorization request leaks (state, PKCE challenge); the attacker signs in with it
    as himself, changing the nonce, and sends the code to the victim: only the nonce check stops it."""
    victim, authorize = start_login(target)
    params = query(authorize)
    params["nonce"] = secrets.token_urlsafe(24)
    attacker = Browser(target)
    callback = scalekit_login(target, attacker, f"{target.env_url}/oauth/authorize?{urlencode(params)}",
                              *target.attacker)
    response = victim.get(callback, "callback")
    _no_session(target, victim, response, "code with another nonce")
    return "a code whose ID token carries another nonce signs no one in"


def check_code_replay(target: Target) -> str:
    login = app_login(target, deliver=False)
    pre_login = login.browser.cookies()
    deliver_callback(login)
    session_ok(target, login)
    replay = Browser(target)
    replay.set_cookies(pre_login)
    response = replay.get(login.callback_url, "callback replay")
    _no_session(target, replay, response, "code replay")
    return "a used callback URL, replayed with the same pre-login cookies, signs no one in"


def check_open_redirects(target: Target) -> str:
    for payload in OPEN_REDIRECT_PAYLOADS:
        qs = urlencode({p: payload for p in OPEN_REDIRECT_PARAMS})
        try:
            login = app_login(target, query_string=qs)
        except CheckFailed as exc:
            if "off the app" in exc.message:
                raise fail(f"open redirect at login ({payload!r}): {exc.message}") from None
            raise
        response = logout_request(target, login.browser, "?" + qs)
        try:
            login.browser.follow(response, "logout")
        except CheckFailed as exc:
            raise fail(f"open redirect at logout ({payload!r}): {exc.message}") from None
    return (f"{len(OPEN_REDIRECT_PAYLOADS)} hostile targets in {', '.join(OPEN_REDIRECT_PARAMS)} stay on the app, "
            "at login and logout")


def check_forged_bearer(target: Target, require_bearer: bool) -> str:
    tokens = own_tokens(target)
    valid_status = api_status(target, bearer=tokens["access_token"])
    if require_bearer and valid_status != 200:
        raise fail(f"bearer: a valid access token answers HTTP {valid_status}, not 200")
    forged = forged_tokens(target)
    answers = {name: api_status(target, bearer=token) for name, token in forged.items()}
    let_in = [f"{name} (HTTP {status})" for name, status in answers.items() if not refused(status)]
    if let_in:
        raise fail(f"forged bearer tokens not refused: {', '.join(let_in)}")
    missing = [v for v in USER_TOKEN_VARIANTS if v not in forged]
    if missing:
        raise CheckFailed(Exit.CONFIG, f"the token matrix lacks {', '.join(missing)}")
    accepted = "a valid token answers 200" if valid_status == 200 else "the API takes no bearer tokens"
    return f"{accepted}; {len(forged)} forged variants are refused"


def check_forged_cookie(target: Target, login: Login) -> str:
    names = sorted(login.session_cookies)
    forged = forged_tokens(target)
    attempts = {"tampered": {n: tampered(v) for n, v in login.session_cookies.items()},
                "truncated": {n: v[: len(v) // 2] for n, v in login.session_cookies.items()},
                "random": {n: _b64(secrets.token_bytes(len(v) * 3 // 4 or 16)) for n, v in
                           login.session_cookies.items()}}
    # Forged tokens as cookie values: for apps that keep the access token itself in a cookie.
    attempts.update({f"forged token {k}": {n: t for n in names} for k, t in forged.items()})
    answers = {what: api_status(target, cookies) for what, cookies in attempts.items()}
    let_in = [f"{what} (HTTP {status})" for what, status in answers.items() if not refused(status)]
    if let_in:
        raise fail(f"forged session cookies ({', '.join(names)}) not refused: {', '.join(let_in)}")
    return f"{len(attempts)} tampered or forged values of {', '.join(names)} are refused"
