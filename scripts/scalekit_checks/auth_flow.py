"""The login that `test_auth_flow.py` runs: full-stack and SSO with the Python SDK, and MCP with the
steps of mcp.py. It listens on a loopback redirect URI, builds the authorization URL with the SDK
(plus PKCE S256, which scalekit-sdk-python 2.21 cannot add itself), logs in (headlessly against the
local environment; otherwise it prints the URL, or opens it, and waits for the callback), exchanges
the code, validates the ID and access tokens with validate_token, refreshes, and builds (and against
the local environment follows) the logout URL."""
from __future__ import annotations

import secrets
import time
import webbrowser
from urllib.parse import urlsplit

from . import cli, flow, net
from .report import CheckFailed, Exit, Report

DEFAULT_REDIRECT_URI = "http://localhost:8765/callback"
LOGOUT_PATH = "/logged-out"
NETWORK_TIMEOUT = 10.0
LOGIN_TIMEOUT = 300.0  # a person logging in, when --timeout is not given
# The ID token carries email and amr; the access token roles, permissions and `scope` (a string).
SHOWN_CLAIMS = ("sub", "email", "oid", "sid", "amr", "roles", "permissions", "scope", "aud", "exp")


class Flow:
    def __init__(self, args, report: Report):
        self.args = args
        self.report = report
        self.timeout = args.timeout or NETWORK_TIMEOUT
        self.login_timeout = args.timeout or (self.timeout if args.local else LOGIN_TIMEOUT)
        self.local_env = None
        self.listener: flow.CallbackListener | None = None
        self.client = None
        self.settings = None
        self.facts = None  # ids from the local environment's seed (with --local)
        self.refresh_token: str | None = None  # the newest one, to prove that logout ended the session

    # -- setup ---------------------------------------------------------------------------------
    def start(self) -> None:
        args = self.args
        redirect = args.redirect_uri or ("http://127.0.0.1:0/callback" if args.local else DEFAULT_REDIRECT_URI)
        logout = args.post_logout_redirect_uri or _origin(redirect) + LOGOUT_PATH
        with self.report.check("callback listener") as c:
            self.listener = flow.CallbackListener(redirect, logout)
            c.ok(f"listening for {self.listener.redirect_uri}")
        local_options = {}
        if args.local:
            from . import local

            self.facts = local.seed_facts(args.seed)
            login = args.login_as or (self.sso_login_email() if args.path == "sso" else None) or self.facts.login_email
            local_options = {"login_email": login, "seed_path": args.seed}
            if not args.redirect_uri:  # our free port: allow it in the local environment's seed
                local_options["register"] = (self.listener.redirect_uri, self.listener.post_logout_uri)
        self.settings, self.local_env = cli.load_settings(args, self.report, **local_options)

    def sdk(self):
        from scalekit import ScalekitClient

        s = self.settings
        with self.report.check("sdk client") as c:
            self.client = self.call(lambda: ScalekitClient(s.env_url, s.client_id, s.client_secret,
                                                           call_timeout_s=self.timeout), "sdk client")
            c.ok("ScalekitClient authenticated (client credentials)")

    def call(self, fn, what: str):
        return net.sdk_call(fn, what, self.settings.env_url, self.timeout)

    def close(self) -> None:
        if self.listener:
            self.listener.close()
        if self.local_env is not None:
            self.local_env.stop()

    def sso_login_email(self) -> str | None:
        """--local --path sso: a seeded user of the connection that --domain, --organization-id or
        --connection-id routes to (the seed's first SSO user without them)."""
        args = self.args
        if not (args.domain or args.organization_id or args.connection_id):
            return self.facts.sso_login_email
        email = self.facts.sso_user_for(organization_id=args.organization_id, connection_id=args.connection_id,
                                        domain=args.domain)
        if email is None:
            raise CheckFailed(Exit.CONFIG, "the local environment's seed has no SSO connection with a user for "
                              + ", ".join(f"--{k.replace('_', '-')} {getattr(args, k)}"
                                          for k in ("domain", "organization_id", "connection_id") if getattr(args, k)))
        return email

    # -- the login -----------------------------------------------------------------------------
    def sso_target(self) -> dict:
        args = self.args
        target = {k: getattr(args, k) for k in ("organization_id", "connection_id", "domain") if getattr(args, k)}
        if not target and args.local:  # --local --path sso: the seed's SSO connection
            if not self.facts.sso_connection_id:
                raise CheckFailed(Exit.CONFIG, "the local environment's seed has no SSO connection with a domain")
            target = {"connection_id": self.facts.sso_connection_id}
        return target

    def authorization_url(self, state: str, nonce: str, challenge: str) -> str:
        from scalekit import AuthorizationUrlOptions

        with self.report.check("authorization url") as c:
            options = AuthorizationUrlOptions()
            options.scopes = self.args.scopes.split()
            options.state = state
            options.nonce = nonce
            if self.args.path == "sso":
                target = self.sso_target()
                options.organization_id = target.get("organization_id")
                options.connection_id = target.get("connection_id")
                options.domain_hint = target.get("domain")
            url = flow.add_pkce(self.client.get_authorization_url(self.listener.redirect_uri, options), challenge)
            expected = f"{self.settings.env_url}/oauth/authorize?"
            if not url.startswith(expected):
                raise CheckFailed(Exit.PROTOCOL, f"the SDK built {url[:80]}..., expected {expected}...")
            c.ok("built by the SDK, with state, nonce and PKCE S256", {"url": url})
        return url

    def login(self, url: str, state: str, expect_iss: str | None = None) -> str:
        """Return the authorization code from the callback."""
        with self.report.check("login") as c:
            if self.local_env is not None:
                self.browser = net.Http(self.timeout)
                response = self.browser.request("GET", url, "login")
                location = response.headers.get("location", "")
                if response.status_code not in (301, 302, 303, 307) or not location:
                    raise CheckFailed(Exit.AUTH, f"the authorization server refused the login request "
                                      f"(HTTP {response.status_code}): {flow.describe_refusal(response)}")
                if not location.startswith(self.listener.redirect_uri):
                    raise CheckFailed(Exit.PROTOCOL, f"the local environment did not log in headlessly; it redirected to {location[:120]}")
                self.browser.request("GET", location, "callback")  # deliver it to our listener, like a browser
                how = "headless login by the local environment"
            else:
                self.report.note(f"Open this URL in a browser and log in (waiting up to {self.login_timeout:g} s):\n{url}")
                if self.args.open:
                    webbrowser.open(url)
                how = "login in the browser"
            params = self.listener.wait("callback", self.login_timeout)
            if params.get("error"):
                raise CheckFailed(Exit.AUTH, f"the login ended with {params['error']}: "
                                  f"{params.get('error_description') or 'no description'}", {"error": params["error"]})
            if params.get("state") != state:
                raise CheckFailed(Exit.AUTH, "the callback's state does not match the one sent; it does not belong to this login")
            if not params.get("code"):
                raise CheckFailed(Exit.PROTOCOL, "the callback has neither code nor error")
            if expect_iss is not None:  # RFC 9207: compared exactly when the server sends it
                if params.get("iss") not in (None, expect_iss):
                    raise CheckFailed(Exit.PROTOCOL, f"the callback's iss {params.get('iss')!r} is not the authorization "
                                      f"server's issuer {expect_iss!r} (mix-up protection, RFC 9207)")
                how += ", iss matches" if params.get("iss") else ", no iss"
            c.ok(f"{how}; callback with code and matching state")
        return params["code"]

    def exchange(self, code: str, verifier: str) -> dict:
        from scalekit import CodeAuthenticationOptions

        with self.report.check("code exchange") as c:
            options = CodeAuthenticationOptions()
            options.code_verifier = verifier
            result = self.call(lambda: self.client.authenticate_with_code(code, self.listener.redirect_uri, options),
                               "code exchange")
            for key in ("id_token", "access_token", "refresh_token"):
                self.report.add_secret(result.get(key))
            user = result.get("user") or {}
            c.ok(f"authenticate_with_code returned tokens for {user.get('email') or user.get('id')} "
                 f"(connection {result.get('connection_id')}, organization {result.get('organization_id')})",
                 {"user": user, "connection_id": result.get("connection_id"),
                  "organization_id": result.get("organization_id"), "expires_in": result.get("expires_in"),
                  "refresh_token": bool(result.get("refresh_token"))})
        return result

    def validate(self, name: str, token: str, nonce: str | None = None) -> dict:
        from scalekit.common.scalekit import TokenValidationOptions

        with self.report.check(name) as c:
            options = TokenValidationOptions(issuer=self.settings.env_url, audience=[self.settings.client_id])
            claims = self.call(lambda: self.client.validate_token(token, options=options), name)
            if nonce is not None and claims.get("nonce") != nonce:
                raise CheckFailed(Exit.PROTOCOL, "the ID token's nonce does not match the one sent")
            left = int(claims.get("exp", 0) - time.time())
            shown = ", ".join(f"{k}={_short(claims[k])}" for k in SHOWN_CLAIMS if k in claims and k != "exp")
            c.ok(f"signature, iss, aud, exp valid (expires in {left} s); {shown}", {"claims": claims})
        return claims

    def check_sso(self, result: dict) -> None:
        with self.report.check("sso") as c:
            target = self.sso_target()
            got_org, got_conn = result.get("organization_id"), result.get("connection_id")
            if "organization_id" in target and got_org != target["organization_id"]:
                raise CheckFailed(Exit.AUTH, f"logged in to organization {got_org}, not {target['organization_id']}")
            if "connection_id" in target and got_conn != target["connection_id"]:
                raise CheckFailed(Exit.AUTH, f"logged in through connection {got_conn}, not {target['connection_id']}")
            if "domain" in target:
                response, _ = self.call(lambda: self.client.connection.list_connections_by_domain(target["domain"]),
                                        "list_connections_by_domain")
                owners = {conn.organization_id for conn in response.connections}
                if not owners:
                    raise CheckFailed(Exit.CONFIG, f"no SSO connection is configured for the domain {target['domain']}")
                if got_org not in owners:
                    raise CheckFailed(Exit.AUTH, f"logged in to organization {got_org}, which does not own {target['domain']}")
                if got_conn not in {conn.id for conn in response.connections}:
                    raise CheckFailed(Exit.AUTH, f"logged in through connection {got_conn}, not the SSO connection of "
                                                 f"{target['domain']}")
            c.ok(f"organization {got_org} through connection {got_conn}", {"organization_id": got_org, "connection_id": got_conn})

    def refresh(self, refresh_token: str | None) -> None:
        with self.report.check("refresh") as c:
            if not refresh_token:
                c.skip("no refresh_token was issued; request the offline_access scope to get one")
                return
            result = self.call(lambda: self.client.refresh_access_token(refresh_token), "refresh")
            for key in ("access_token", "refresh_token"):
                self.report.add_secret(result.get(key))
            self.refresh_token = result.get("refresh_token")
            rotated = "rotated" if result.get("refresh_token") != refresh_token else "not rotated"
            c.ok(f"refresh_access_token returned a new access token (refresh token {rotated})")
        self.validate("refreshed access token", result["access_token"])

    def logout(self, id_token: str) -> None:
        from scalekit.common.scalekit import LogoutUrlOptions

        state = secrets.token_urlsafe(16)
        with self.report.check("logout url") as c:
            options = LogoutUrlOptions(id_token_hint=id_token, post_logout_redirect_uri=self.listener.post_logout_uri,
                                       state=state)
            url = self.client.get_logout_url(options)
            if not url.startswith(f"{self.settings.env_url}/oidc/logout?"):
                raise CheckFailed(Exit.PROTOCOL, f"unexpected logout URL {url[:80]}")
            c.ok("built by the SDK (id_token_hint, post_logout_redirect_uri, state)", {"url": url})
        if self.local_env is None:
            return
        with self.report.check("logout") as c:
            response = self.browser.request("GET", url, "logout")
            location = response.headers.get("location", "")
            if response.status_code not in (301, 302, 303, 307) or not location.startswith(self.listener.post_logout_uri):
                raise CheckFailed(Exit.AUTH, f"logout did not return to {self.listener.post_logout_uri} "
                                  f"(HTTP {response.status_code}): {flow.describe_refusal(response)}")
            if f"state={state}" not in location:
                raise CheckFailed(Exit.AUTH, "the post-logout redirect does not carry the state that was sent")
            if self.listener.post_logout_uri and "logout" in self.listener.paths.values():
                self.browser.request("GET", location, "logout")  # deliver it, like a browser
                if self.listener.wait("logout", self.timeout).get("state") != state:
                    raise CheckFailed(Exit.AUTH, "the post-logout redirect's state does not match the one sent")
            # Only a request that carries Scalekit's session cookie ends the session; the session's
            # refresh token must now be refused.
            ended = "no refresh token to prove the session ended"
            if self.refresh_token:
                try:
                    self.client.refresh_access_token(self.refresh_token)
                except Exception:  # noqa: BLE001 - any refusal means the session is gone
                    ended = "session ended: its refresh token is refused"
                else:
                    raise CheckFailed(Exit.AUTH, "the session is still active after logout: the logout request "
                                      "must be a browser redirect that carries Scalekit's session cookie")
            c.ok(f"returned to {self.listener.post_logout_uri} with matching state; {ended}")

    def mcp(self) -> None:
        """OAuth 2.1 for an MCP server: the resource's metadata (RFC 8414), dynamic client registration
        (RFC 7591), PKCE S256, `resource` (RFC 8707) at authorize and token, `iss` (RFC 9207), a token
        whose audience is the resource, and a rotated refresh."""
        from . import mcp

        resource = self.args.resource_id or self.facts.only_resource()
        http = self.browser = net.Http(self.timeout)
        meta = mcp.discover(self.report, http, self.settings.env_url, resource)
        mcp_url = self.args.mcp_url or mcp.local_resource_url(self.args.seed, resource)
        client_id = mcp.register(self.report, http, meta, self.listener.redirect_uri)
        verifier, challenge = flow.pkce_pair()
        state = secrets.token_urlsafe(16)
        scopes = mcp.scopes_to_ask(meta)
        url = mcp.authorization_url(meta, client_id, self.listener.redirect_uri, state, challenge, mcp_url, scopes)
        with self.report.check("authorization url") as c:
            c.ok(f"PKCE S256, resource={mcp_url}, scope={' '.join(scopes)}", {"url": url})
        code = self.login(url, state, expect_iss=meta["issuer"])
        tokens = mcp.exchange(self.report, http, meta, client_id, code, verifier, self.listener.redirect_uri, mcp_url)
        self.validate_mcp("access token", tokens["access_token"], resource, meta["issuer"], mcp_url)
        refreshed = mcp.refresh(self.report, http, meta, client_id, tokens.get("refresh_token"), mcp_url)
        if refreshed:
            self.validate_mcp("refreshed access token", refreshed["access_token"], resource, meta["issuer"], mcp_url)

    def validate_mcp(self, name: str, token: str, resource: str, resource_issuer: str, mcp_url: str) -> dict:
        """validate_token with audience=[res_id]; the issuer may be the environment URL (what
        Scalekit issues today) or the resource-scoped issuer of the metadata."""
        from scalekit.common.scalekit import TokenValidationOptions

        self.report.add_secret(token)
        with self.report.check(name) as c:
            options = TokenValidationOptions(issuer=[self.settings.env_url, resource_issuer], audience=[resource])
            claims = self.call(lambda: self.client.validate_token(token, options=options), name)
            aud = claims.get("aud") or []
            aud = [aud] if isinstance(aud, str) else aud
            left = int(claims.get("exp", 0) - time.time())
            shown = ", ".join(f"{k}={_short(claims[k])}" for k in ("sub", "scope", "aud", "iss") if k in claims)
            if mcp_url not in aud:
                c.warn(f"signature, iss, aud ({resource}), exp valid, but aud does not list {mcp_url}; {shown}",
                       {"claims": claims})
            else:
                c.ok(f"signature, iss, aud ({resource} and {mcp_url}), exp valid (expires in {left} s); {shown}",
                     {"claims": claims})
        return claims

    def run(self) -> None:
        self.start()
        self.sdk()
        if self.args.path == "mcp":
            self.mcp()
            return
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        verifier, challenge = flow.pkce_pair()
        url = self.authorization_url(state, nonce, challenge)
        code = self.login(url, state)
        result = self.exchange(code, verifier)
        self.validate("id token", result["id_token"], nonce)
        self.validate("access token", result["access_token"])
        if self.args.path == "sso":
            self.check_sso(result)
        self.refresh(result.get("refresh_token"))
        self.logout(result["id_token"])


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _short(value) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)
