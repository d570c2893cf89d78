"""Black-box checks of an MCP server's OAuth protection, for scripts/test_mcp_server.py.

From outside, as an MCP client or an attacker would: the 401 challenge, protected-resource metadata
(RFC 9728) and the authorization server it names (RFC 8414), then tokens. Against the local Scalekit
environment the tokens come from its token matrix (`POST /_local/token-matrix`: one valid token and
single-fault variants), so every refusal the MCP spec requires is tried; against a hosted
environment only what needs no minted token runs, plus a real client login with --open.

The real client is the MCP Python SDK's (`mcp` 2.3): discovery, registration, PKCE with `resource`,
a tool call. Its browser step is an HTTP form driver: it follows redirects and submits the login and
consent forms it meets (the local environment's pages, or a custom-auth app's own login page), or,
against a hosted environment, prints the URL and waits for the callback on a loopback port.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import ssl
import webbrowser
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

from . import net
from .report import CheckFailed, Exit, Report

PROTOCOL_VERSION = "2025-11-25"
ACCEPT = "application/json, text/event-stream"
RESOURCE_ISSUER = re.compile(r"^(https?://[^/?#]+)/resources/([A-Za-z0-9_-]+)$")
CHALLENGE_PARAM = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]+)')
# Single-fault variants of the token matrix that must get 401; missing_scope must get 403.
REFUSED_WITH_401 = ("aud_other_resource", "aud_other_api", "aud_client_credentials", "iss_other_environment",
                    "forged_signature", "unknown_kid", "alg_none", "hs256_public_key", "expired", "not_yet_valid")
NEEDS_LOCAL = "needs the local Scalekit environment's token matrix (run against a server configured for " \
              "`python scripts/local_scalekit.py`)"
DEFAULT_LOGIN = ("alice@acme.test", "alice-password")  # the local environment's default seed


@dataclass
class Options:
    url: str
    tool: str | None = None  # None: pick one from tools/list (pick_tool)
    tool_args: dict = field(default_factory=dict)
    write_tool: str | None = None
    write_scope: str | None = None
    write_args: dict = field(default_factory=dict)
    login: tuple[str, str] = DEFAULT_LOGIN
    open_browser: bool = False
    login_wait: float = 300.0
    timeout: float = 10.0


@dataclass
class Found:
    """What discovery learnt about the server and its authorization server."""
    challenge_scopes: list[str] = field(default_factory=list)
    base_scopes: list[str] = field(default_factory=list)  # what the token matrix's tokens carry
    resource_metadata_url: str | None = None
    prm: dict = field(default_factory=dict)
    issuer: str | None = None
    as_meta: dict = field(default_factory=dict)
    env_url: str | None = None
    resource_id: str | None = None
    local: bool = False
    matrix: dict | None = None         # issuer form -> matrix document
    write_token: str | None = None     # valid, with the write scope too
    other_user_token: str | None = None
    client_token: str | None = None    # from the real client's login


def pick_tool(tools: list, avoid: str | None = None) -> str | None:
    """A tool the checks may call with no arguments: none required by its input schema, not `avoid`
    (the write tool), not marked destructive. Read-only tools first, then the server's order."""
    usable = []
    for tool in tools:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or tool["name"] == avoid:
            continue
        schema = tool.get("inputSchema") if isinstance(tool.get("inputSchema"), dict) else {}
        hints = tool.get("annotations") if isinstance(tool.get("annotations"), dict) else {}
        if schema.get("required") or (hints.get("destructiveHint") is True and not hints.get("readOnlyHint")):
            continue
        usable.append((not hints.get("readOnlyHint"), len(usable), tool["name"]))
    return min(usable)[2] if usable else None


def no_tool_message(tools: list) -> str:
    names = ", ".join(t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str))
    return (f"no tool can be called without arguments (tools/list: {names or 'none'}); pass --tool NAME and, "
            "if it needs them, --tool-args JSON: a tool any valid token may call")


def parse_challenge(header: str | None) -> dict[str, str] | None:
    """Parameters of the Bearer challenge in a WWW-Authenticate header, or None if there is none."""
    if not header:
        return None
    match = re.search(r"(?:^|,\s*)Bearer\b", header, re.IGNORECASE)
    if not match:
        return None
    rest = header[match.end():]
    params: dict[str, str] = {}
    for m in CHALLENGE_PARAM.finditer(rest):
        before = rest[:m.start()]
        if re.search(r",\s*[A-Za-z][\w-]*\s*$", before) and not re.search(r"=", before.rsplit(",", 1)[-1]):
            break  # the next challenge (another scheme) starts here
        value = m.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[m.group(1).lower()] = value
    return params


def rpc_body(method: str, params: dict | None = None, request_id: int | None = 1) -> dict:
    body: dict = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        body["params"] = params
    if request_id is not None:
        body["id"] = request_id
    return body


def initialize_params() -> dict:
    return {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": "scalekit-auth test_mcp_server.py", "version": "1"}}


def rpc_message(response) -> dict | None:
    """The JSON-RPC message of an MCP answer: a JSON body, or the first `data:` event of an SSE stream."""
    ctype = response.headers.get("content-type", "")
    try:
        if "text/event-stream" in ctype:
            for line in response.text.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    message = json.loads(line[5:].strip())
                    if isinstance(message, dict) and ("result" in message or "error" in message):
                        return message
            return None
        body = response.json()
        return body if isinstance(body, dict) else None
    except ValueError:
        return None


def decode_claims(token: str) -> dict:
    import jwt

    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}


def ssl_context() -> ssl.SSLContext:
    """Trust as requests does: REQUESTS_CA_BUNDLE, else SSL_CERT_FILE, else the system's roots."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=bundle) if bundle and os.path.isfile(bundle) else \
        ssl.create_default_context()


# ---- the browser step: an HTTP form driver ---------------------------------------------------------
class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                               "fields": [], "buttons": []})
        elif self.forms and tag in ("input", "button", "select", "textarea"):
            kind = a.get("type", "submit" if tag == "button" else "text").lower()
            if kind == "submit":
                if a.get("name"):
                    self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))
            elif a.get("name"):
                self.forms[-1]["fields"].append((a["name"], kind, a.get("value", "")))


def fill_form(form: dict, email: str, password: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for name, kind, value in form["fields"]:
        lowered = name.lower()
        if kind == "password":
            data[name] = password
        elif kind == "email" or (kind == "text" and any(w in lowered for w in ("email", "user", "login"))):
            data[name] = email
        else:
            data[name] = value
    approve = next(((n, v) for n, v in form["buttons"] if v.lower() in ("approve", "allow", "accept", "yes")), None)
    if approve or form["buttons"]:
        name, value = approve or form["buttons"][0]
        data[name] = value
    return data


class FormBrowser:
    """Follows an authorization URL to the redirect URI, submitting login and consent forms on the way."""

    MAX_STEPS = 15

    def __init__(self, redirect_uri: str, login: tuple[str, str], timeout: float, verify: ssl.SSLContext | None = None):
        import httpx2

        self.redirect_uri = redirect_uri
        self.email, self.password = login
        self.client = httpx2.AsyncClient(verify=verify or ssl_context(), follow_redirects=False, timeout=timeout)
        self.visited: list[str] = []
        self.password_posts: set[str] = set()

    async def run(self, url: str) -> str:
        """The redirect URI with the code (or error) that the login ends at."""
        method, data = "GET", None
        self.password_posts = set()  # per login: a step-up logs in again
        for _ in range(self.MAX_STEPS):
            if url.startswith(self.redirect_uri):
                return url
            self.visited.append(urlsplit(url)._replace(query="").geturl())
            response = await (self.client.get(url) if method == "GET" else self.client.post(url, data=data))
            if response.status_code in (301, 302, 303, 307, 308) and response.headers.get("location"):
                url, method, data = urljoin(url, response.headers["location"]), "GET", None
                continue
            forms = _Forms()
            forms.feed(response.text if "html" in response.headers.get("content-type", "") else "")
            form = next((f for f in forms.forms if f["fields"] or f["buttons"]), None)
            page = urlsplit(url)._replace(query="").geturl()
            target = urljoin(url, form["action"] or url) if form else None
            asks_password = form is not None and any(kind == "password" for _, kind, _ in form["fields"])
            if asks_password and target in self.password_posts:  # the same login form again: refused
                raise CheckFailed(Exit.AUTH, f"the login page {page} refused {self.email} (it showed its form "
                                  f"again, HTTP {response.status_code}); pass a user it knows with --login EMAIL:PASSWORD")
            if response.status_code != 200 or form is None:
                from .flow import describe_refusal

                raise CheckFailed(Exit.AUTH, f"the login stopped at {page}: HTTP {response.status_code}, "
                                  f"{describe_refusal(response)}")
            if asks_password:
                self.password_posts.add(target)
            url = target
            method = "POST" if form["method"] == "post" else "GET"
            data = fill_form(form, self.email, self.password)
            if method == "GET":
                url = f"{url.split('?')[0]}?{'&'.join(f'{k}={v}' for k, v in data.items())}"
        raise CheckFailed(Exit.PROTOCOL, f"the login did not reach {self.redirect_uri} within {self.MAX_STEPS} steps")

    async def close(self) -> None:
        await self.client.aclose()


# ---- the checks ----------------------------------------------------------------------------------
class McpServerChecks:
    def __init__(self, report: Report, options: Options, expected: dict[str, str | None] | None = None):
        self.report = report
        self.o = options
        self.expected = {k: v for k, v in (expected or {}).items() if v}  # the env file's values, to compare
        self.http = net.Http(options.timeout)
        self.found = Found()
        self.last_401 = None
        split = urlsplit(options.url)
        self.origin = f"{split.scheme}://{split.netloc}"
        self.path = split.path if split.path not in ("", "/") else ""

    # -- raw MCP requests ------------------------------------------------------------------------
    def post(self, body: dict, token: str | None = None, session: str | None = None, what: str = "mcp request",
             url: str | None = None):
        headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
            self.report.add_secret(token)
        if session:
            headers["Mcp-Session-Id"] = session
            headers["MCP-Protocol-Version"] = PROTOCOL_VERSION
        return self.http.request("POST", url or self.o.url, what, json=body, headers=headers)

    def open_session(self, token: str, what: str) -> tuple[object, str | None]:
        """initialize (+ notifications/initialized) with a token: (initialize answer, session id or None)."""
        response = self.post(rpc_body("initialize", initialize_params()), token, what=what)
        session = response.headers.get("mcp-session-id")
        if response.status_code == 200:
            self.post(rpc_body("notifications/initialized", None, None), token, session, what)
        return response, session

    def call_tool(self, name: str, args: dict, token: str | None, session: str | None, what: str):
        return self.post(rpc_body("tools/call", {"name": name, "arguments": args}, 2), token, session, what)

    # -- discovery -------------------------------------------------------------------------------
    def endpoint(self) -> None:
        with self.report.check("mcp endpoint") as c:
            response = self.post(rpc_body("initialize", initialize_params()), what="mcp endpoint")
            status = response.status_code
            if 200 <= status < 300:
                raise CheckFailed(Exit.PROTOCOL, f"{self.o.url} answered initialize with HTTP {status} without a "
                                  "token: the MCP endpoint is not protected")
            if status == 404:
                raise CheckFailed(Exit.CONFIG, f"{self.o.url} answered HTTP 404: no MCP endpoint there; pass the "
                                  "endpoint URL, e.g. http://localhost:8000/mcp")
            if status != 401:
                raise CheckFailed(Exit.PROTOCOL, f"{self.o.url} answered HTTP {status} without a token; the MCP "
                                  "spec requires 401 with WWW-Authenticate", {"http_status": status})
            self.last_401 = response
            c.ok("initialize without a token gets 401", {"http_status": status})

    def challenge(self) -> None:
        with self.report.check("401 challenge") as c:
            header = self.last_401.headers.get("www-authenticate")
            params = parse_challenge(header)
            if params is None:
                c.fail(Exit.PROTOCOL, f"the 401 has no Bearer WWW-Authenticate header (got {header!r}); clients "
                       "find the metadata through its resource_metadata")
                return
            problems, notes = [], []
            meta_url = params.get("resource_metadata")
            if not meta_url:
                problems.append("no resource_metadata")
            elif not meta_url.startswith(("https://", "http://")):
                problems.append(f"resource_metadata {meta_url!r} is not an absolute URL")
            else:
                self.found.resource_metadata_url = meta_url
            scope = params.get("scope")
            if not scope:
                problems.append("no scope (clients then ask for every scope in scopes_supported)")
            else:
                self.found.challenge_scopes = scope.split()
            if params.get("error"):
                notes.append(f"error={params['error']} although no token was sent (RFC 6750 §3.1: leave it out)")
            data = {"www_authenticate": header, "scope": scope, "resource_metadata": meta_url}
            if problems:
                c.fail(Exit.PROTOCOL, f"WWW-Authenticate {header!r}: {'; '.join(problems)}", data)
            elif notes:
                c.warn("; ".join(notes), data)
            else:
                c.ok(f"Bearer resource_metadata={meta_url}, scope={scope}", data)

    def path_suffixed_url(self) -> str:
        return f"{self.origin}/.well-known/oauth-protected-resource{self.path}"

    def fetch_prm(self, url: str, what: str) -> tuple[int, dict | None]:
        response = self.http.request("GET", url, what)
        if response.status_code != 200:
            return response.status_code, None
        return 200, net.Http.json(response, what)

    def resource_metadata(self) -> None:
        with self.report.check("resource metadata") as c:
            url = self.found.resource_metadata_url or self.path_suffixed_url()
            status, doc = self.fetch_prm(url, "resource metadata")
            if doc is None:
                raise CheckFailed(Exit.PROTOCOL, f"{url} answered HTTP {status}; protected-resource metadata "
                                  "(RFC 9728) must be served there", {"http_status": status})
            problems, notes = [], []
            if doc.get("resource") != self.o.url:
                problems.append(f"resource is {doc.get('resource')!r}, not the URL clients use ({self.o.url}); "
                                "clients refuse a mismatch (RFC 9728 §3.3)")
            servers = doc.get("authorization_servers")
            if not isinstance(servers, list) or not servers or not all(isinstance(s, str) for s in servers):
                problems.append("authorization_servers must list at least one issuer URL")
            supported = doc.get("scopes_supported") or []
            missing = [s for s in self.found.challenge_scopes if s not in supported]
            if missing:
                notes.append(f"scopes_supported lacks the challenged {' '.join(missing)}")
            if "offline_access" in supported:
                notes.append("scopes_supported lists offline_access (MCP 2026-07-28: leave it out)")
            if doc.get("bearer_methods_supported") not in (None, ["header"]):
                notes.append(f"bearer_methods_supported is {doc.get('bearer_methods_supported')}; only header "
                             "tokens are allowed for MCP")
            if problems:
                raise CheckFailed(Exit.PROTOCOL, f"{url}: {'; '.join(problems)}", {"metadata": doc})
            self.found.prm = doc
            (c.warn if notes else c.ok)("; ".join(notes) or f"{url}: resource {doc['resource']}, authorization "
                                        f"server {servers[0]}", {"url": url, "metadata": doc})

    def well_known(self) -> None:
        with self.report.check("well-known metadata") as c:
            suffixed = self.path_suffixed_url()
            root = f"{self.origin}/.well-known/oauth-protected-resource"
            status, doc = self.fetch_prm(suffixed, "well-known metadata")
            data = {"path_suffixed": suffixed, "path_suffixed_status": status}
            if doc is None or doc.get("resource") != self.o.url:
                c.fail(Exit.PROTOCOL, f"{suffixed} answered HTTP {status}"
                       + ("" if doc is None else f" with resource {doc.get('resource')!r}")
                       + "; clients without the header's URL look there (RFC 9728 §3.1)", data)
                return
            root_served = None
            if root != suffixed:
                status, doc = self.fetch_prm(root, "well-known metadata")
                data.update(root=root, root_status=status)
                if doc is not None and doc.get("resource") != self.o.url:
                    c.fail(Exit.PROTOCOL, f"{root} describes {doc.get('resource')!r}, not {self.o.url}", data)
                    return
                root_served = doc is not None
            data["root_served"] = root_served
            c.ok(f"{suffixed}" + (f" and {root}" if root_served else
                                  f"; {root} not served (optional: serve it when the host has one MCP server)"
                                  if root_served is False else ""), data)

    def authorization_server(self) -> None:
        with self.report.check("authorization server") as c:
            entry = self.found.prm["authorization_servers"][0]
            parts = urlsplit(entry)
            origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
            candidates = ([f"{origin}/.well-known/oauth-authorization-server{path}",
                           f"{origin}/.well-known/openid-configuration{path}",
                           f"{origin}{path}/.well-known/openid-configuration"] if path else
                          [f"{origin}/.well-known/oauth-authorization-server",
                           f"{origin}/.well-known/openid-configuration"])
            meta, tried = None, []
            for url in candidates:  # the MCP spec's discovery order
                response = self.http.request("GET", url, "authorization server")
                tried.append(f"{url} ({response.status_code})")
                if response.status_code == 200:
                    meta = net.Http.json(response, "authorization server")
                    break
            if meta is None:
                raise CheckFailed(Exit.PROTOCOL, f"no authorization-server metadata for {entry}: {', '.join(tried)}")
            if meta.get("issuer") != entry and not (not path and meta.get("issuer", "").rstrip("/") == origin):
                raise CheckFailed(Exit.PROTOCOL, f"the metadata at {url} has issuer {meta.get('issuer')!r}, but "
                                  f"authorization_servers names {entry!r}; strict MCP clients (MCP Python SDK 2.3, "
                                  "TypeScript SDK 2.x) refuse it (RFC 8414 §3.3). For Scalekit list "
                                  "{environment URL}/resources/{resource id}", {"issuer": meta.get("issuer")})
            if "S256" not in (meta.get("code_challenge_methods_supported") or []):
                raise CheckFailed(Exit.PROTOCOL, "the authorization server does not advertise PKCE S256; MCP "
                                  "clients must refuse it")
            self.found.issuer, self.found.as_meta = entry, meta
            registration = [k for k in ("registration_endpoint", "client_id_metadata_document_supported") if meta.get(k)]
            if not registration:
                c.warn(f"issuer {entry} matches, S256; but neither dynamic client registration nor client ID "
                       "metadata documents are offered, so MCP clients need a pre-registered client",
                       {"issuer": entry, "metadata_url": url})
            else:
                c.ok(f"issuer {entry} matches its metadata; S256; {', '.join(registration)}",
                     {"issuer": entry, "metadata_url": url})

    def environment(self) -> None:
        with self.report.check("scalekit environment") as c:
            match = RESOURCE_ISSUER.match(self.found.issuer)
            if not match:
                raise CheckFailed(Exit.PROTOCOL, f"authorization_servers names {self.found.issuer}, not Scalekit's "
                                  "issuer for an MCP server, {environment URL}/resources/{resource id}: clients "
                                  "would log in without your resource's scopes and audience")
            env_url, resource_id = match.groups()
            self.found.env_url, self.found.resource_id = env_url, resource_id
            self.report.info["environment_url"] = env_url
            try:
                response = self.http.request("GET", f"{env_url}/_local/health", "scalekit environment")
                self.found.local = response.status_code == 200 and "ok" in response.text
            except CheckFailed:
                self.found.local = False
            self.report.info["local"] = self.found.local
            kind = "the local Scalekit environment" if self.found.local else "a hosted Scalekit environment"
            data = {"environment_url": env_url, "resource_id": resource_id, "local": self.found.local}
            found = {"SCALEKIT_ENVIRONMENT_URL": env_url, "SCALEKIT_RESOURCE_ID": resource_id}
            differ = [f"{name} is {value} in the env file" for name, value in self.expected.items()
                      if name in found and value.rstrip("/") != found[name]]
            if differ:
                c.warn(f"{kind} at {env_url}, resource {resource_id}; but {', '.join(differ)}: is the server "
                       "started with that file?", data)
            else:
                c.ok(f"{kind} at {env_url}, resource {resource_id}", data)

    # -- the tool the checks call ----------------------------------------------------------------
    def choose_tool(self) -> None:
        with self.report.check("tool") as c:
            if self.o.tool:
                c.ok(f"{self.o.tool} (--tool)", {"tool": self.o.tool, "picked": False})
                return
            if self.found.matrix is None:
                c.skip("no token to list the tools with yet: the MCP client picks one after its login (or pass --tool)")
                return
            token = self.found.matrix["environment"]["valid"]["token"]
            response, session = self.open_session(token, "tool")
            if response.status_code == 200:
                response = self.post(rpc_body("tools/list", {}, 2), token, session, "tool")
            message = rpc_message(response)
            if response.status_code != 200 or not message or not isinstance(message.get("result"), dict):
                raise CheckFailed(Exit.PROTOCOL, f"tools/list with a valid token answered HTTP {response.status_code}: "
                                  f"{(response.text or '')[:200]}; pass --tool NAME to name a tool any valid token "
                                  "may call", {"http_status": response.status_code})
            tools = message["result"].get("tools") or []
            self.o.tool = pick_tool(tools, self.o.write_tool)
            if self.o.tool is None:
                raise CheckFailed(Exit.CONFIG, no_tool_message(tools))
            c.ok(f"{self.o.tool}, picked from tools/list: it needs no arguments (pass --tool to choose another)",
                 {"tool": self.o.tool, "picked": True})

    def needs_tool(self, c) -> bool:
        """Skip check `c` when there is no tool to call; True if there is one."""
        if self.o.tool:
            return True
        c.skip("no tool to call (see the `tool` check): pass --tool NAME")
        return False

    # -- tokens ----------------------------------------------------------------------------------
    def matrix(self, issuer_form: str, scopes: list[str], subject: str | None = None,
               client_id: str | None = None) -> dict | None:
        body = {"kind": "mcp", "audience": [self.found.resource_id, self.o.url], "scopes": scopes,
                "issuer": issuer_form}
        if scopes:
            body["required_scope"] = scopes[0]
        for key, value in (("subject", subject), ("client_id", client_id)):
            if value:
                body[key] = value
        response = self.http.request("POST", f"{self.found.env_url}/_local/token-matrix", "token matrix", json=body)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise net.http_status_failure("token matrix", response.status_code, response.text[:2000],
                                          f"{self.found.env_url}/_local/token-matrix")
        doc = net.Http.json(response, "token matrix")
        self.report.add_secret(doc["valid"]["token"])
        for variant in doc["variants"]:
            self.report.add_secret(variant["token"])
        return doc

    def load_matrix(self) -> None:
        with self.report.check("token matrix") as c:
            if not self.found.local:
                c.skip(NEEDS_LOCAL)
                return
            # The scopes every request needs: the challenge's, else what a client would fall back to.
            scopes = self.found.challenge_scopes or [s for s in self.found.prm.get("scopes_supported", [])
                                                     if s != "offline_access"][:1]
            self.found.base_scopes = scopes
            docs = {form: self.matrix(form, scopes) for form in ("environment", "resource")}
            if any(d is None for d in docs.values()):
                c.skip("this local environment has no /_local/token-matrix; update the repository")
                return
            self.found.matrix = docs
            # Another user of the same client: a token that differs from the first only in `sub`.
            claims = docs["environment"]["valid"]["claims"]
            other = "usr_" + str(int(hashlib.sha256(claims["sub"].encode()).hexdigest(), 16) % 10**17).zfill(17)
            self.found.other_user_token = self.matrix("environment", scopes, other, claims["client_id"])["valid"]["token"]
            if self.o.write_tool and self.o.write_scope:
                self.found.write_token = self.matrix("environment", scopes + [self.o.write_scope])["valid"]["token"]
            c.ok(f"one valid token per issuer form and {len(docs['environment']['variants'])} single-fault variants "
                 f"for {self.found.resource_id}, scopes {' '.join(scopes) or '(none)'}")

    def valid_tokens(self) -> None:
        with self.report.check("valid token") as c:
            if self.found.matrix is None:
                c.skip(NEEDS_LOCAL)
                return
            if not self.needs_tool(c):
                return
            results = {}
            for form, doc in self.found.matrix.items():
                token = doc["valid"]["token"]
                response, session = self.open_session(token, "valid token")
                results[form] = response.status_code
                if response.status_code != 200:
                    c.fail(Exit.AUTH, f"a valid token with iss {doc['valid']['claims']['iss']} got HTTP "
                           f"{response.status_code} on initialize; accept both issuers (the environment URL and "
                           f"{{environment URL}}/resources/{{resource id}}) and audience {self.found.resource_id}",
                           {"http_status": response.status_code, "issuer_form": form})
                    return
                called = self.call_tool(self.o.tool, self.o.tool_args, token, session, "valid token")
                message = rpc_message(called)
                if called.status_code != 200 or not message or "result" not in message or \
                        message["result"].get("isError"):
                    c.fail(Exit.PROTOCOL, f"tools/call {self.o.tool} with a valid token answered HTTP "
                           f"{called.status_code}: {(called.text or '')[:200]} (is it a tool any valid token may "
                           "call? name one with --tool)", {"http_status": called.status_code})
                    return
            c.ok(f"initialize and tools/call {self.o.tool} accepted with iss = environment URL and with iss = "
                 "{environment URL}/resources/{resource id}", {"http_status": results})

    def forged_tokens(self) -> None:
        with self.report.check("forged tokens") as c:
            if self.found.matrix is None:
                c.skip(NEEDS_LOCAL)
                return
            statuses, through, no_error = {}, [], []
            variants = {v["name"]: v for v in self.found.matrix["environment"]["variants"]}
            for name in REFUSED_WITH_401:
                if name not in variants:
                    continue
                response = self.post(rpc_body("initialize", initialize_params()), variants[name]["token"],
                                     what="forged tokens")
                statuses[name] = response.status_code
                if response.status_code != 401:
                    through.append(f"{name} ({variants[name]['why']}): HTTP {response.status_code}")
                elif (parse_challenge(response.headers.get("www-authenticate")) or {}).get("error") != "invalid_token":
                    no_error.append(name)
            if through:
                c.fail(Exit.PROTOCOL, f"not refused with 401: {'; '.join(through)}", {"http_status": statuses})
            elif no_error:
                c.warn(f"all {len(statuses)} refused with 401, but without error=\"invalid_token\" for "
                       f"{', '.join(no_error)}", {"http_status": statuses})
            else:
                c.ok(f"all {len(statuses)} refused with 401 invalid_token: {', '.join(statuses)}",
                     {"http_status": statuses})

    def insufficient_scope(self, response, needed: str) -> str | None:
        """What is wrong with a step-up answer, or None."""
        params = parse_challenge(response.headers.get("www-authenticate")) or {}
        if response.status_code != 403:
            return f"HTTP {response.status_code} (expected 403)"
        if params.get("error") != "insufficient_scope":
            return f"error={params.get('error')!r} (expected insufficient_scope)"
        if needed not in (params.get("scope") or "").split():
            return f"scope={params.get('scope')!r} does not name {needed}"
        if not params.get("resource_metadata"):
            return "no resource_metadata"
        return None

    def scope_shortfall(self) -> None:
        with self.report.check("scope shortfall") as c:
            if self.found.matrix is None:
                c.skip(NEEDS_LOCAL)
                return
            variant = next((v for v in self.found.matrix["environment"]["variants"] if v["name"] == "missing_scope"), None)
            if variant is None or not self.found.base_scopes:
                c.skip("neither the 401 challenge nor the metadata names a scope, so no scope can be left out")
                return
            needed = self.found.base_scopes[0]
            response = self.post(rpc_body("initialize", initialize_params()), variant["token"], what="scope shortfall")
            problem = self.insufficient_scope(response, needed)
            data = {"http_status": response.status_code, "www_authenticate": response.headers.get("www-authenticate")}
            if problem:
                c.fail(Exit.PROTOCOL, f"a valid token without {needed}: {problem}; answer 403 with "
                       f"WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"{needed}\", resource_metadata=... "
                       "so that clients can step up", data)
            else:
                c.ok(f"a token without {needed} gets 403 insufficient_scope, scope and resource_metadata", data)

    def step_up(self) -> None:
        with self.report.check("step-up") as c:
            if not self.o.write_tool:
                c.skip("no --write-tool given (a tool that needs more scope than the challenge names)")
                return
            if self.found.matrix is None or self.found.write_token is None:
                c.skip(NEEDS_LOCAL)
                return
            token = self.found.matrix["environment"]["valid"]["token"]
            _, session = self.open_session(token, "step-up")
            called = self.call_tool(self.o.write_tool, self.o.write_args, token, session, "step-up")
            problem = self.insufficient_scope(called, self.o.write_scope)
            if problem:
                c.fail(Exit.PROTOCOL, f"tools/call {self.o.write_tool} without {self.o.write_scope}: {problem}",
                       {"http_status": called.status_code})
                return
            _, session = self.open_session(self.found.write_token, "step-up")
            called = self.call_tool(self.o.write_tool, self.o.write_args, self.found.write_token, session, "step-up")
            message = rpc_message(called)
            if called.status_code != 200 or not message or "result" not in message or message["result"].get("isError"):
                c.fail(Exit.PROTOCOL, f"tools/call {self.o.write_tool} with {self.o.write_scope} answered HTTP "
                       f"{called.status_code}: {(called.text or '')[:200]}", {"http_status": called.status_code})
                return
            c.ok(f"{self.o.write_tool} without {self.o.write_scope}: 403 insufficient_scope; with it: the call runs")

    def some_valid_token(self) -> str | None:
        if self.found.matrix is not None:
            return self.found.matrix["environment"]["valid"]["token"]
        return self.found.client_token

    def query_token(self) -> None:
        with self.report.check("query-string token") as c:
            token = self.some_valid_token()
            if token is None:
                c.skip(f"needs a valid token: {NEEDS_LOCAL}, or a login with --open")
                return
            url = f"{self.o.url}{'&' if '?' in self.o.url else '?'}access_token={token}"
            response = self.post(rpc_body("initialize", initialize_params()), what="query-string token", url=url)
            if 200 <= response.status_code < 300:
                c.fail(Exit.PROTOCOL, f"a valid token in ?access_token= was accepted (HTTP {response.status_code}); "
                       "MCP servers must read tokens from the Authorization header only", {"http_status": response.status_code})
            elif response.status_code != 401:
                c.warn(f"refused with HTTP {response.status_code}; 401 is expected", {"http_status": response.status_code})
            else:
                c.ok("a valid token in ?access_token= gets 401", {"http_status": response.status_code})

    def sessions(self) -> None:
        token = self.some_valid_token()
        session = None
        with self.report.check("session without token") as c:
            if token is not None:
                _, session = self.open_session(token, "session without token")
            if token is None:
                c.skip(f"needs a valid token: {NEEDS_LOCAL}, or a login with --open")
            elif not self.needs_tool(c):
                pass
            elif session is None:
                c.skip("the server issued no Mcp-Session-Id (stateless), so there is no session to reuse")
            else:
                called = self.call_tool(self.o.tool, self.o.tool_args, None, session, "session without token")
                if 200 <= called.status_code < 300:
                    c.fail(Exit.PROTOCOL, f"tools/call with an Mcp-Session-Id and no token was answered (HTTP "
                           f"{called.status_code}); sessions are not authentication: require the token on every request",
                           {"http_status": called.status_code})
                elif called.status_code != 401:
                    c.warn(f"refused with HTTP {called.status_code}; 401 is expected", {"http_status": called.status_code})
                else:
                    c.ok("a session id without a token gets 401", {"http_status": called.status_code})
        with self.report.check("session of another user") as c:
            other = self.found.other_user_token
            if token is None or other is None:
                c.skip(NEEDS_LOCAL + " (two users' tokens)")
            elif not self.needs_tool(c):
                pass
            elif session is None:
                c.skip("the server issued no Mcp-Session-Id (stateless), so there is no session to take over")
            elif decode_claims(other).get("sub") == decode_claims(token).get("sub"):
                c.skip("the token matrix gave both tokens the same subject")
            else:
                called = self.call_tool(self.o.tool, self.o.tool_args, other, session, "session of another user")
                data = {"http_status": called.status_code}
                if 200 <= called.status_code < 300:
                    c.fail(Exit.PROTOCOL, f"another user's valid token was served in a session this user opened "
                           f"(HTTP {called.status_code}); bind each Mcp-Session-Id to the token's sub", data)
                elif called.status_code >= 500:
                    c.fail(Exit.PROTOCOL, f"HTTP {called.status_code}; expected a refusal (404, 403 or 401)", data)
                else:
                    c.ok(f"another user's token in this user's session gets HTTP {called.status_code}", data)

    # -- the real client -------------------------------------------------------------------------
    def mcp_client(self) -> None:
        with self.report.check("mcp client") as c:
            if not self.found.local and not self.o.open_browser:
                c.skip("a hosted environment needs a person to log in: add --open (or point the server at the "
                       "local Scalekit environment)")
                return
            if self.found.matrix is not None and not self.needs_tool(c):  # the tool check could not pick one
                return
            try:
                result = asyncio.run(asyncio.wait_for(client_flow(self.o, self.found.local, note=self.report.note),
                                                      self.o.login_wait + 6 * self.o.timeout))
            except TimeoutError:
                raise CheckFailed(Exit.NETWORK, f"the MCP client did not finish within "
                                  f"{self.o.login_wait + 6 * self.o.timeout:g} s") from None
            except Exception as exc:  # the SDK raises from inside task groups
                ours = check_failure_in(exc)
                if ours is not None:
                    raise ours from None
                inner = _innermost(exc)
                raise CheckFailed(Exit.PROTOCOL, f"the MCP Python SDK client failed: {_describe(inner)}") from None
            self.found.client_token = result.pop("access_token", None)
            self.report.add_secret(self.found.client_token)
            problems = []
            if result["resource"] != self.o.url:
                problems.append(f"the client sent resource={result['resource']!r}")
            if result["code_challenge_method"] != "S256":
                problems.append("no PKCE S256")
            if result.get("step_up_error"):
                problems.append(result["step_up_error"])
            if problems:
                raise CheckFailed(Exit.PROTOCOL, "; ".join(problems), result)
            steps = (f"registered {result['client_id']}, PKCE S256 with resource={result['resource']}, "
                     f"tools/call {self.o.tool} answered")
            if result.get("step_up_scope"):
                steps += f"; stepped up to {result['step_up_scope']} for {self.o.write_tool}"
            c.ok(steps, result)

    # -- all of it -------------------------------------------------------------------------------
    def run(self) -> None:
        # Discovery: each step needs what the one before found, so its first failure ends the run.
        self.endpoint()
        self.challenge()
        self.resource_metadata()
        self.well_known()
        self.authorization_server()
        self.environment()
        if self.found.env_url:
            self.load_matrix()
        # The rest are independent: a failure is reported and the next check runs.
        for check in (self.choose_tool, self.mcp_client, self.valid_tokens, self.forged_tokens, self.scope_shortfall,
                      self.step_up, self.query_token, self.sessions):
            try:
                check()
            except CheckFailed as exc:
                if not getattr(exc, "recorded", False):  # raised outside any check: not reported yet
                    raise


async def client_flow(o: Options, local: bool, verify: ssl.SSLContext | None = None, note=print,
                      browser_step=None) -> dict:
    """The MCP Python SDK client against the server: register, log in (PKCE, resource), call o.tool and,
    with o.write_tool, step up. `local`: drive the login pages over HTTP (or with `browser_step(url,
    redirect_uri) -> the URL the login ended at`, e.g. a real browser); otherwise print the URL (and
    open it with o.open_browser) and wait for the callback. Returns what happened, with the access token."""
    import logging

    import httpx2
    from mcp import ClientSession
    from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import OAuthClientMetadata

    from .flow import CallbackListener

    logging.getLogger("mcp").setLevel(logging.CRITICAL)  # its failures end up in our report, without tracebacks
    listener = CallbackListener("http://127.0.0.1:0/callback", None) if not local else None
    redirect_uri = listener.redirect_uri if listener else f"http://127.0.0.1:{_unused_port()}/callback"
    browser = FormBrowser(redirect_uri, o.login, o.timeout, verify)
    authorize_urls: list[str] = []
    landed: dict = {}

    async def redirect_handler(url: str) -> None:
        authorize_urls.append(url)
        if listener is None:
            ended = await (browser_step(url, redirect_uri) if browser_step else browser.run(url))
            landed["params"] = {k: v[0] for k, v in parse_qs(urlsplit(ended).query).items()}
            return
        note(f"Open this URL to log in (waiting up to {o.login_wait:g} s):\n{url}")
        if o.open_browser:
            webbrowser.open(url)
        landed["params"] = await asyncio.to_thread(listener.wait, "callback", o.login_wait)

    async def callback_handler() -> AuthorizationCodeResult:
        params = landed.pop("params", {})
        if "error" in params:
            raise CheckFailed(Exit.AUTH, f"the authorization server answered {params['error']}: "
                              f"{params.get('error_description', '')}".rstrip(": "))
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        o.url, OAuthClientMetadata(client_name="scalekit-auth test_mcp_server.py", redirect_uris=[redirect_uri],
                                   grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                                   token_endpoint_auth_method="none"),
        storage, redirect_handler=redirect_handler, callback_handler=callback_handler)
    out: dict = {}
    try:
        async with (httpx2.AsyncClient(auth=provider, verify=verify or ssl_context(), timeout=o.timeout) as client,
                    streamable_http_client(o.url, http_client=client) as (read, write, *_),
                    ClientSession(read, write) as session):
                init = await session.initialize()
                out["protocol_version"] = str(getattr(init, "protocol_version", "") or "")
                tools = await session.list_tools()
                out["tools"] = sorted(t.name for t in tools.tools)
                if not o.tool:  # no --tool, and no token matrix picked one before
                    listed = [t.model_dump(by_alias=True, exclude_none=True) for t in tools.tools]
                    o.tool = pick_tool(listed, o.write_tool)
                    if o.tool is None:
                        raise CheckFailed(Exit.CONFIG, no_tool_message(listed))
                result = await session.call_tool(o.tool, o.tool_args)
                if result.is_error:
                    raise CheckFailed(Exit.PROTOCOL, f"tools/call {o.tool} answered an error: "
                                      f"{_content_text(result)[:200]}")
                out["tool_result"] = _content_text(result)[:300]
                if o.write_tool and o.write_scope:
                    logins = len(authorize_urls)
                    result = await session.call_tool(o.write_tool, o.write_args)
                    if result.is_error:
                        out["step_up_error"] = (f"{o.write_tool} answered an error after the client's "
                                                f"step-up: {_content_text(result)[:200]}")
                    elif len(authorize_urls) == logins:
                        out["step_up_error"] = (f"{o.write_tool} ran without a step-up to "
                                                f"{o.write_scope}: does the first token hold it already?")
                    else:
                        out["step_up_scope"] = _query(authorize_urls[-1]).get("scope")
    finally:
        await browser.close()
        if listener:
            listener.close()
    if not authorize_urls:
        raise CheckFailed(Exit.PROTOCOL, "the client never had to log in: the server answered without a token")
    first = _query(authorize_urls[0])
    out.update(login_pages=sorted(set(browser.visited)),
               client_id=storage.client_info.client_id if storage.client_info else None,
               resource=first.get("resource"), code_challenge_method=first.get("code_challenge_method"),
               scope=first.get("scope"), logins=len(authorize_urls),
               access_token=storage.tokens.access_token if storage.tokens else None)
    claims = decode_claims(out["access_token"] or "")
    out["claims"] = {k: claims.get(k) for k in ("iss", "aud", "sub", "client_id", "scope", "exp") if k in claims}
    return out


class MemoryStorage:
    """Token storage for the MCP SDK's OAuth client: this run only, nothing written to disk."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info) -> None:
        self.client_info = client_info


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _content_text(result) -> str:
    if getattr(result, "structured_content", None):
        return json.dumps(result.structured_content)
    return " ".join(getattr(part, "text", "") for part in result.content or [])


def _unused_port() -> int:
    """A port for a redirect URI that is never listened on (the form driver stops at the redirect)."""
    return 40000 + secrets.randbelow(20000)


def check_failure_in(exc: BaseException) -> CheckFailed | None:
    """A CheckFailed raised by the browser step, wherever the SDK wrapped it."""
    stack, seen = [exc], set()
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, CheckFailed):
            return e
        stack.extend([e.__cause__, e.__context__, *getattr(e, "exceptions", ())])
    return None


def _innermost(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (the SDK raises from inside anyio task groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    cause = exc.__cause__ or exc.__context__
    if not text and cause is not None:
        return f"{type(exc).__name__}: {_describe(_innermost(cause))}"
    return f"{type(exc).__name__}: {text or 'no message'}"[:400]
