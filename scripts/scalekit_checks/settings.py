"""Read the Scalekit settings from `.env` and the process environment, and check each one.

The file wins over the process environment, as in an app that calls `load_dotenv(override=True)`
(what the local environment's page tells apps to do): a file written by
`local_scalekit.py --env-file` then works as it is, even where the machine exports its own
REQUESTS_CA_BUNDLE or SSL_CERT_FILE. Its trust variables are applied to this process before any
connection. Every check line says where its value came from.
"""
from __future__ import annotations

import ipaddress
import re
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from .report import Exit, Report

ENV_URL = "SCALEKIT_ENVIRONMENT_URL"
CLIENT_ID = "SCALEKIT_CLIENT_ID"
CLIENT_SECRET = "SCALEKIT_CLIENT_SECRET"
REDIRECT_URI = "SCALEKIT_REDIRECT_URI"
POST_LOGOUT_URI = "SCALEKIT_POST_LOGOUT_REDIRECT_URI"
RESOURCE_ID = "SCALEKIT_RESOURCE_ID"  # MCP servers
CONNECTION_ID = "SCALEKIT_CONNECTION_ID"  # MCP servers with their own login (custom auth)
APP_URL = "APP_URL"  # MCP servers: the public origin; the MCP endpoint is APP_URL + its path
VARIABLES = (ENV_URL, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_URI, RESOURCE_ID, CONNECTION_ID, APP_URL)
# Where requests, grpcio, httpx/OpenSSL, curl and Node look for CA certificates.
TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "SSL_CERT_FILE", "CURL_CA_BUNDLE",
                   "NODE_EXTRA_CA_CERTS")

# Names seen in older Scalekit docs and SDK READMEs; we point people to the canonical one.
ALIASES = {ENV_URL: ("SCALEKIT_ENV_URL", "SCALEKIT_URL", "SCALEKIT_ENVIRONMENT")}
CLIENT_ID_PREFIX = "skc_"
MIN_SECRET_LENGTH = 20
PLACEHOLDER_MARKERS = ("...", "<", ">", "your-", "your_", "changeme")
LOOPBACK_NAMES = ("localhost",)


@dataclass
class Settings:
    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    env_file: str | None = None
    trust_from_file: list[str] = field(default_factory=list)  # trust variables the file set for this process

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def source(self, name: str) -> str:
        """Where a value came from, as the report lines show it: "(from .env)"."""
        return f"(from {self.sources[name]})"

    @property
    def env_url(self) -> str:
        return self.values[ENV_URL]

    @property
    def client_id(self) -> str:
        return self.values[CLIENT_ID]

    @property
    def client_secret(self) -> str:
        return self.values[CLIENT_SECRET]


class SettingsError(Exception):
    pass


def load(env_file: str | None, explicit: bool) -> Settings:
    """Merge the env file (if any) over the process environment and apply its trust variables to
    os.environ; raise SettingsError if an explicitly named file is missing or unreadable."""
    settings = Settings()
    file_values: dict[str, str | None] = {}
    if env_file:
        path = Path(env_file)
        if path.is_file():
            try:
                file_values = dotenv_values(path)
            except (OSError, ValueError) as exc:  # ValueError: not UTF-8 text
                raise SettingsError(f"env file {env_file} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
            settings.env_file = str(path)
        elif explicit:
            raise SettingsError(f"env file {env_file} does not exist")
    for name in VARIABLES + tuple(a for names in ALIASES.values() for a in names):
        if file_values.get(name):
            settings.values[name] = file_values[name]
            settings.sources[name] = settings.env_file or env_file
        elif os.environ.get(name):
            settings.values[name] = os.environ[name]
            settings.sources[name] = "environment"
    for name in TRUST_VARIABLES:
        if file_values.get(name):
            os.environ[name] = file_values[name]  # before the SDK opens its first connection
            settings.trust_from_file.append(name)
    return settings


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def _origin_problem(value: str) -> tuple[str | None, str | None, str | None]:
    """Return (normalised URL, error, warning) for an environment URL."""
    if value != value.strip():
        return None, "has leading or trailing whitespace", None
    if value[:1] in "'\"" or value[-1:] in "'\"":
        return None, "is wrapped in quotes; remove them", None
    if "://" not in value:
        return None, f"has no scheme; use https://{value.rstrip('/')}", None
    try:
        parts = urlsplit(value)
        parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        return None, f"is not a valid URL ({exc})", None
    if parts.scheme not in ("https", "http"):
        return None, f"must use https:// (got {parts.scheme}://)", None
    if not parts.hostname:
        return None, "has no host name", None
    if _looks_like_placeholder(value):
        return None, "looks like a placeholder from the docs; copy the real URL from the Scalekit dashboard", None
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return None, f"uses http:// for the remote host {parts.hostname}; use https:// (http is only for localhost or 127.0.0.1)", None
    if parts.username or parts.password:
        return None, "must not contain a user name or password", None
    if parts.query or parts.fragment:
        return None, "must not have a query string or fragment", None
    if parts.path not in ("", "/"):
        return None, (f"must be the environment's origin without a path (got path {parts.path}); "
                      f"the SDK calls {parts.scheme}://{parts.netloc}/oauth/token"), None
    normalised = f"{parts.scheme}://{parts.netloc}"
    if parts.path == "/":
        return normalised, None, (f"trailing slash removed: set it to {normalised} "
                                  "(with the slash the Python SDK calls //oauth/token and gets 404)")
    return normalised, None, None


def _redirect_problem(value: str) -> str | None:
    if value != value.strip():
        return "has leading or trailing whitespace"
    try:
        parts = urlsplit(value)
        parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute http(s) URL, e.g. http://localhost:3000/auth/callback"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return f"uses http:// for the remote host {parts.hostname}; use https:// (http is only for localhost or 127.0.0.1)"
    if parts.fragment:
        return "must not have a #fragment"
    if "*" in value:
        return "must be an exact URL; wildcards are not allowed"
    if _looks_like_placeholder(value):
        return "looks like a placeholder; use your app's real URL"
    return None


def check_all(settings: Settings, report: Report, optional: bool = True, path: str = "full-stack") -> bool:
    """Run one check per variable (the redirect URLs only if `optional`). Normalises the
    environment URL in place. Returns True if all values are usable. With path "mcp": the variables
    of an MCP server instead (check_mcp_server), and the client credentials only when set."""
    report.add_secret(settings.get(CLIENT_SECRET))
    ok = True

    with report.check(ENV_URL) as c:
        value = settings.get(ENV_URL)
        if not value:
            alias = next((a for a in ALIASES[ENV_URL] if settings.get(a)), None)
            hint = (f"; {alias} is set: rename it to {ENV_URL}" if alias else
                    "; copy it from the Scalekit dashboard (Developers > Settings), e.g. https://<your-environment>.scalekit.com")
            c.fail(Exit.CONFIG, f"not set{hint}")
            ok = False
        else:
            url, error, warning = _origin_problem(value)
            if error:
                c.fail(Exit.CONFIG, f"{value!r} {error}")
                ok = False
            else:
                settings.values[ENV_URL] = url
                (c.warn if warning else c.ok)(f"{warning or url} {settings.source(ENV_URL)}", {"value": url})

    if path == "mcp":
        ok = check_mcp_server(settings, report) and ok
        if not any(settings.get(n) for n in (CLIENT_ID, CLIENT_SECRET, CONNECTION_ID)):
            for name in (CLIENT_ID, CLIENT_SECRET):
                with report.check(name) as c:
                    c.skip("not needed: an MCP server only verifies tokens (custom auth, which posts users to "
                           "Scalekit, needs it)")
            return ok

    with report.check(CLIENT_ID) as c:
        value = settings.get(CLIENT_ID)
        if not value:
            c.fail(Exit.CONFIG, "not set; copy it from the Scalekit dashboard (Developers > Settings > API credentials)")
            ok = False
        elif value != value.strip() or any(ch.isspace() or ch in "'\"" for ch in value):
            c.fail(Exit.CONFIG, "contains whitespace or quotes; remove them")
            ok = False
        elif not value.startswith(CLIENT_ID_PREFIX):
            hint = (" (m2morg_ ids belong to an organization's M2M client; use the environment's API client)"
                    if value.startswith("m2morg_") else "")
            c.fail(Exit.CONFIG, f"{value!r} should start with {CLIENT_ID_PREFIX}{hint}")
            ok = False
        else:
            c.ok(f"{value} {settings.source(CLIENT_ID)}", {"value": value})

    with report.check(CLIENT_SECRET) as c:
        value = settings.get(CLIENT_SECRET)
        if not value:
            c.fail(Exit.CONFIG, "not set; create one in the Scalekit dashboard (Developers > Settings > API credentials)")
            ok = False
        elif any(ch.isspace() or ch in "'\"" for ch in value):
            c.fail(Exit.CONFIG, "contains whitespace or quotes; remove them")
            ok = False
        elif _looks_like_placeholder(value):
            c.fail(Exit.CONFIG, "looks like a placeholder; paste the real secret")
            ok = False
        elif value == settings.get(CLIENT_ID):
            c.fail(Exit.CONFIG, f"is the same as {CLIENT_ID}; paste the secret, not the id")
            ok = False
        elif len(value) < MIN_SECRET_LENGTH:
            c.fail(Exit.CONFIG, f"is too short to be a Scalekit client secret ({len(value)} characters)")
            ok = False
        else:
            c.ok(f"set, {len(value)} characters, not shown {settings.source(CLIENT_SECRET)}", {"length": len(value)})

    if not optional or path == "mcp":
        return ok
    app_url = None
    with report.check(APP_URL) as c:
        value = settings.get(APP_URL)
        if not value:
            c.skip("not set (optional: the app's public origin; the templates derive their callback, "
                   f"APP_URL{CALLBACK_PATH}, from it)")
        else:
            app_url, error, warning = _app_origin_problem(value)
            if error:
                c.fail(Exit.CONFIG, f"{value!r} {error}")
                ok = False
            else:
                settings.values[APP_URL] = app_url
                callback = app_url + CALLBACK_PATH
                (c.warn if warning else c.ok)(
                    f"{warning or app_url} {settings.source(APP_URL)}; the templates' callback {callback} must be "
                    "registered exactly in the Scalekit dashboard", {"value": app_url, "redirect_uri": callback})

    for name in (REDIRECT_URI, POST_LOGOUT_URI):
        with report.check(name) as c:
            value = settings.get(name)
            if not value:
                c.skip("not set (optional: the templates derive it from APP_URL)" if app_url else
                       "not set (optional: the URL your app registers in the Scalekit dashboard)")
                continue
            error = _redirect_problem(value)
            if not error and name == REDIRECT_URI and app_url and _origin(value) != app_url:
                error = (f"is not on APP_URL's origin {app_url}: the login starts there and its state cookie is "
                         "only sent back to that origin")
            if error:
                c.fail(Exit.CONFIG, f"{value!r} {error}")
                ok = False
            else:
                c.ok(f"{value} {settings.source(name)}; it must be registered exactly in the Scalekit dashboard",
                     {"value": value})
    return ok


CALLBACK_PATH = "/auth/callback"  # every full-stack and SSO template's callback route


def _app_origin_problem(value: str) -> tuple[str | None, str | None, str | None]:
    """Return (normalised origin, error, warning) for an app's APP_URL: an origin, as for the environment."""
    if "://" in value and urlsplit(value.strip()).path not in ("", "/"):
        return None, (f"must be the app's origin without a path; the templates add the routes themselves "
                      f"(APP_URL{CALLBACK_PATH})"), None
    url, error, warning = _origin_problem(value)
    if warning:  # the trailing slash
        warning = (f"trailing slash removed: set it to {url} (an app that appends {CALLBACK_PATH} to it builds "
                   f"{url}/{CALLBACK_PATH}, which does not match the registered callback)")
    return url, error, warning


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL that passed _redirect_problem, as _origin_problem spells it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


RESOURCE_ID_PATTERN = re.compile(r"res_[A-Za-z0-9]+")
CONNECTION_ID_PATTERN = re.compile(r"conn_[A-Za-z0-9]+")


def check_mcp_server(settings: Settings, report: Report) -> bool:
    """SCALEKIT_RESOURCE_ID, APP_URL and, when set, SCALEKIT_CONNECTION_ID: what an MCP server needs
    besides SCALEKIT_ENVIRONMENT_URL. Returns True if all values are usable."""
    ok = True

    with report.check(RESOURCE_ID) as c:
        value = settings.get(RESOURCE_ID)
        if not value:
            c.fail(Exit.CONFIG, "not set; register the MCP server in the Scalekit dashboard (MCP servers) and copy "
                   "its resource id (res_...)")
            ok = False
        elif _looks_like_placeholder(value) or not RESOURCE_ID_PATTERN.fullmatch(value):
            c.fail(Exit.CONFIG, f"{value!r} is not a resource id; it looks like res_ followed by letters and digits")
            ok = False
        else:
            c.ok(f"{value} {settings.source(RESOURCE_ID)}", {"value": value})

    with report.check(APP_URL) as c:
        value = settings.get(APP_URL)
        if not value:
            c.fail(Exit.CONFIG, "not set; the server's public origin, e.g. https://mcp.example.com (or "
                   "http://localhost:8000): the MCP endpoint is APP_URL + /mcp")
            ok = False
        elif urlsplit(value.strip()).path not in ("", "/"):
            c.fail(Exit.CONFIG, f"{value!r} must be the server's origin without a path; the MCP endpoint is "
                   "APP_URL + /mcp")
            ok = False
        else:
            url, error, warning = _origin_problem(value)
            if error:
                c.fail(Exit.CONFIG, f"{value!r} {error}")
                ok = False
            else:
                settings.values[APP_URL] = url
                endpoint = f"{url}/mcp"
                (c.warn if warning else c.ok)(
                    f"{warning or url} {settings.source(APP_URL)}; the MCP endpoint {endpoint} "
                    "(or APP_URL + your MCP path) must be the server URL registered for the resource in Scalekit",
                    {"value": url, "mcp_endpoint": endpoint})

    with report.check(CONNECTION_ID) as c:
        value = settings.get(CONNECTION_ID)
        if not value:
            c.skip("not set (custom auth only: the connection of the MCP server's own login page)")
        elif _looks_like_placeholder(value) or not CONNECTION_ID_PATTERN.fullmatch(value):
            c.fail(Exit.CONFIG, f"{value!r} is not a connection id; it looks like conn_ followed by letters and digits")
            ok = False
        else:
            c.ok(f"{value} {settings.source(CONNECTION_ID)}; custom auth also needs {CLIENT_ID} and {CLIENT_SECRET}",
                 {"value": value})
    return ok
