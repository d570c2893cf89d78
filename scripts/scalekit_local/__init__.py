"""Local Scalekit environment: OAuth/OIDC endpoints and the gRPC management API on one origin.

Embedding API (stable; other scripts and the test fixture build on it)::

    from scalekit_local import LocalScalekit

    LocalScalekit(port=0, host="127.0.0.1", tls=True, seed_path=None, data_dir=None,
                  auto_login=None, access_token_ttl=300, persist=False)
        .start() -> self        # serves from a background thread with its own event loop;
                                # returns once listening; raises StartupError on failure
                                # (the constructor already raises it for a bad seed or option)
        .stop()                 # idempotent
        with LocalScalekit() as env: ...     # start() / stop()
        .url            "https://127.0.0.1:PORT" (http:// when tls=False): SCALEKIT_ENVIRONMENT_URL
        .port           the bound port (port=0 picks a free one)
        .client_id      the seed's first environment client: SCALEKIT_CLIENT_ID
        .client_secret  its secret: SCALEKIT_CLIENT_SECRET
        .ca_bundle      path: system roots + local CA (REQUESTS_CA_BUNDLE, GRPC_..., SSL_CERT_FILE)
        .ca_cert        path: the local CA alone (NODE_EXTRA_CA_CERTS)
        .env_vars()     dict: SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID, SCALEKIT_CLIENT_SECRET and,
                        with TLS, REQUESTS_CA_BUNDLE, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, NODE_EXTRA_CA_CERTS,
                        SSL_CERT_FILE, CURL_CA_BUNDLE
        .store          the live state (scalekit_local.state.store.Store), for tests and admin tools
        .events         the event bus (scalekit_local.cross.webhooks.EventBus): .recent_events(), .emit()

- seed_path: YAML seed (None: default_seed.yaml next to this file).
- data_dir: where the CA, TLS certificate and signing key live (None: .local-scalekit in the skill folder, beside scripts/).
- auto_login: email of a seeded user; /oauth/authorize then redirects straight back with a code
  (client, redirect URI, scopes and PKCE are still checked).
- access_token_ttl: seconds an access token lives (also the SDK's own client_credentials token).
- persist: keep the state in <data_dir>/state.sqlite3 across restarts (persistence.py); the seed
  then only fills a new state file.

grpcio reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once per process, before its first secure channel:
set the variables from env_vars() before the Python SDK creates its first client.

Where things are. Layers, top to bottom: a module imports only from layers below its own, and the HTTP
endpoints and the gRPC services, side by side, never import each other (tests/local_env/test_layers.py):

    __init__.py, cli.py, server.py   start and stop: LocalScalekit, the command line, Environment (wires the rest)
    coverage.py                      generates SUPPORTED.md from the SDKs' descriptors and the servicers and routes
    listener/front.py                the one port: TLS and ALPN (or h2c sniffing) to the gRPC or the HTTP backend
    listener/header_deadline.py      an HTTP/1.1 request must send its headers within 10 s
    endpoints/app.py                 the HTTP app: every route in one table, and the middleware
    endpoints/oauth.py               what the OAuth endpoints share: parameters, errors, redirects, PKCE, code checks
    endpoints/oidc.py                discovery, /keys, /oauth/authorize, /oauth/token, /oidc/logout, /userinfo
    endpoints/login.py               the login pages (password, SSO, identity provider, social) and complete_login
    endpoints/mcp_as.py              the MCP authorization server: metadata, registration, metadata documents, consent
    endpoints/bridge.py              the custom-auth bridge's HTTP endpoints (user details, partner callback)
    endpoints/portal.py              the admin portal page, and the portal-link, password and domain admin routes
    endpoints/admin.py               /_local/ health, stats, webhooks, events, faults and mailbox routes
    endpoints/directories.py         /_local/directories: the SCIM stand-in's routes
    endpoints/idp_initiated.py       /_local/idp-initiated-login
    endpoints/token_matrix.py        /_local/token-matrix: a valid token and its single-fault variants
    endpoints/admin_guard.py         refuses cross-site requests to /_local/
    endpoints/pages.py               HTML pages from endpoints/templates/
    services/grpc_server.py          the gRPC server: authentication, fault and change interceptors
    services/__init__.py             SERVICERS: one class per Scalekit service, one module each (services/<name>.py)
    services/base.py                 the Servicer base class (UNIMPLEMENTED for the rest), errors, pagination
    domain/context.py                Context: what handlers share (store, tokens, events, mailbox, faults, URL)
    domain/users.py                  just-in-time users at SSO, social and bridge logins, with their events
    domain/domains.py                verifying a domain; SSO routing follows verified domains
    domain/mcp.py                    MCP client redirect-URI rules; a pending MCP login gets its user
    domain/bridge.py                 the custom-auth bridge's user step (HTTP and gRPC AuthService)
    domain/directory_sync.py         the SCIM stand-in: pushes directory users and groups, emits their events
    cross/webhooks.py                the event bus and signed webhook deliveries
    cross/mailbox.py                 emails the environment would send
    cross/faults.py                  injected faults for HTTP routes and gRPC methods
    cross/rpc_errors.py              gRPC errors with Scalekit's ErrorInfo detail
    state/store.py                   Store: every piece of state, declared in Store.__init__
    state/records.py                 every record's shape (dataclasses) and the JSON shapes events carry
    state/mcp.py                     the MCP authorization server's state (store.mcp)
    state/seed.py                    loading and checking seed files (default_seed.yaml, seed.schema.json)
    state/persistence.py             --persist: the store in SQLite
    keys/datadir.py                  the data folder: local CA, TLS certificate, signing key
    keys/tokens.py                   signing and checking JWTs shaped as Scalekit issues them
    keys/token_claims.py             custom access-token claims (--token-claim)
    ids.py, safe_input.py            leaves: ids and the clock; parsing untrusted input without a traceback
"""
from __future__ import annotations

import asyncio
import threading

from .server import Environment, StartupError
from .state.seed import DEFAULT_SEED_PATH, SeedError, load_seed

__all__ = ["LocalScalekit", "StartupError", "SeedError", "load_seed", "DEFAULT_SEED_PATH"]


class LocalScalekit:
    def __init__(self, port: int = 0, host: str = "127.0.0.1", tls: bool = True, seed_path=None, data_dir=None,
                 auto_login: str | None = None, access_token_ttl: int = 300, persist: bool = False):
        self._env = Environment(port=port, host=host, tls=tls, seed_path=seed_path, data_dir=data_dir,
                                auto_login=auto_login, access_token_ttl=access_token_ttl, persist=persist)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> "LocalScalekit":
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopped = asyncio.Event()
            try:
                await self._env.start()
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                await self._stopped.wait()
            finally:
                await self._env.stop()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name="local-scalekit", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> "LocalScalekit":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ---- facts for clients ----------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._env.url

    @property
    def port(self) -> int:
        return self._env.ctx.port

    @property
    def client_id(self) -> str:
        return self._env.client.id

    @property
    def client_secret(self) -> str:
        return self._env.client.secret

    @property
    def ca_bundle(self) -> str:
        return str(self._env.data.ca_bundle)

    @property
    def ca_cert(self) -> str:
        return str(self._env.data.ca_cert)

    @property
    def store(self):
        return self._env.store

    @property
    def events(self):
        return self._env.events

    def env_vars(self) -> dict[str, str]:
        return self._env.env_vars()
