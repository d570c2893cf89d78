"""Starts and stops one local environment: data folder, state, gRPC and HTTP backends, the front."""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import tempfile
from pathlib import Path

from .cross.faults import FaultRegistry
from .cross.mailbox import Mailbox
from .cross.webhooks import EventBus
from .domain.context import LOOPBACK_NAMES, Context
from .keys import datadir
from .keys.tokens import TokenIssuer
from .state.seed import SeedError, add_registrations, load_seed, webhook_secret
from .state.store import Store

log = logging.getLogger("scalekit_local")


class StartupError(Exception):
    """The environment could not start (bad option, port in use...). str() is user-facing; the exit
    code is the scripts' "configuration" code."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class Environment:
    """One running environment, driven from an asyncio event loop."""

    def __init__(self, port: int = 8443, host: str = "127.0.0.1", tls: bool = True, seed_path=None,
                 data_dir=None, auto_login: str | None = None, access_token_ttl: int = 300, persist: bool = False,
                 redirect_uris=(), post_logout_redirect_uris=(), mcp_resources=(), mcp_token_issuer: str = "environment",
                 mcp_login_url: str | None = None, webhook_urls=(), hostile_idp_connections=(), token_claims=(),
                 modular_sso: bool = False):
        if host not in LOOPBACK_NAMES:
            raise StartupError(f"--host must be one of {', '.join(LOOPBACK_NAMES)} (the environment is loopback-only)", 2)
        if not 0 <= int(port) <= 65535:
            raise StartupError(f"port {port} is out of range", 2)
        if int(access_token_ttl) < 1:
            raise StartupError("the access-token TTL must be at least 1 second", 2)
        self.requested_port, self.host, self.tls = int(port), host, tls
        try:
            seed = load_seed(seed_path)
            # {MCP server URL: resource id} for --mcp-resource; printed as SCALEKIT_RESOURCE_ID
            self.mcp_resource_ids = add_registrations(
                seed, redirect_uris=redirect_uris, post_logout_redirect_uris=post_logout_redirect_uris,
                mcp_resources=mcp_resources, mcp_token_issuer=mcp_token_issuer, mcp_login_url=mcp_login_url,
                webhook_urls=webhook_urls, token_claims=token_claims)
            # custom auth (--mcp-login-url): the connection the app posts its user to
            self.mcp_connection_id = next((r["custom_auth"]["connection_id"] for r in seed.get("resources", [])
                                           if mcp_login_url and r.get("custom_auth")
                                           and r["id"] in self.mcp_resource_ids.values()), None)
        except SeedError as exc:
            raise StartupError(str(exc), 2) from None
        # printed as SCALEKIT_WEBHOOK_SECRET: the secret of the first --webhook-url
        self.webhook_secret = webhook_secret(seed, webhook_urls[0]) if webhook_urls else None
        self.store = Store(seed)
        self.events = EventBus(endpoints=seed.get("webhooks", []))
        for connection_id in hostile_idp_connections:
            if self.store.connection(connection_id) is None:
                raise StartupError(f"--hostile-idp: unknown connection {connection_id!r}", 2)
            self.store.hostile_idp_connections.add(connection_id)
        self.store.modular_sso = bool(modular_sso)
        auto_user = None
        if auto_login:
            user = self.store.user_by_email(auto_login)
            if user is None:
                known = ", ".join(sorted(u.email for u in self.store.users.values()))
                raise StartupError(f"--auto-login: no seeded user with email {auto_login!r} (seeded: {known})", 2)
            auto_user = user.id
        try:
            self.data = datadir.prepare(data_dir)
        except OSError as exc:
            raise StartupError(f"cannot prepare the data folder: {exc}", 2) from None
        self.persister = None  # --persist: state in <data folder>/state.sqlite3 (persistence.py)
        if persist:
            from .state.persistence import STATE_FILE, Persister

            try:
                self.persister = Persister(self.data.path / STATE_FILE, self.store)
                self.persister.load()
            except Exception as exc:  # sqlite3.Error, a document that no longer fits the store
                raise StartupError(f"cannot load the saved state {self.data.path / STATE_FILE}: {exc}", 2) from None
        self.ctx = Context(store=self.store, tokens=TokenIssuer(self.data.signing_key, self.data.kid, int(access_token_ttl)),
                           events=self.events, mailbox=Mailbox(), faults=FaultRegistry(), tls=tls, host=host,
                           auto_login_user_id=auto_user)
        self.verbose = False  # the CLI's -v: access log of HTTP requests
        self._sockets_dir: str | None = None
        self._grpc = None
        self._uvicorn = None
        self._uvicorn_task: asyncio.Task | None = None
        self._front = None

    # ---- facts for clients ----------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.ctx.url

    @property
    def client(self):
        return self.store.default_client

    def env_vars(self) -> dict[str, str]:
        """What an app needs: the three SCALEKIT_* settings (and SCALEKIT_RESOURCE_ID with --mcp-resource)
        and, over TLS, the trust variables."""
        resource = {"SCALEKIT_RESOURCE_ID": next(iter(self.mcp_resource_ids.values()))} if self.mcp_resource_ids else {}
        if self.mcp_connection_id:
            resource["SCALEKIT_CONNECTION_ID"] = self.mcp_connection_id
        app = {
            "SCALEKIT_ENVIRONMENT_URL": self.url,
            "SCALEKIT_CLIENT_ID": self.client.id,
            "SCALEKIT_CLIENT_SECRET": self.client.secret,
            **resource,
            **({"SCALEKIT_WEBHOOK_SECRET": self.webhook_secret} if self.webhook_secret else {}),
        }
        if not self.tls:  # http:// needs no CA; printing one would only mislead
            return app
        bundle = str(self.data.ca_bundle)
        return {
            **app,
            "REQUESTS_CA_BUNDLE": bundle,
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": bundle,
            "NODE_EXTRA_CA_CERTS": str(self.data.ca_cert),
            "SSL_CERT_FILE": bundle,
            "CURL_CA_BUNDLE": bundle,
        }

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        import uvicorn

        from .endpoints.app import build_app
        from .listener.front import Front
        from .listener.header_deadline import HeaderDeadlineProtocol
        from .services.grpc_server import build_server

        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_exception_handler)
        # Short path: unix socket paths are limited to about 100 bytes.
        self._sockets_dir = tempfile.mkdtemp(prefix="skl-")
        grpc_socket = os.path.join(self._sockets_dir, "grpc.sock")
        http_socket = os.path.join(self._sockets_dir, "http.sock")
        try:
            ssl_context = datadir.server_ssl_context(self.data) if self.tls else None
            self._front = Front(self.host, self.requested_port, ssl_context, grpc_socket, http_socket)
            try:
                self.ctx.port = await self._front.start()
            except OSError as exc:
                raise StartupError(f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}"
                                   + (" (try --port 0 for a free port)" if self.requested_port else ""), 2) from None

            self._grpc = build_server(self.ctx, f"unix:{grpc_socket}")
            self._grpc.start()

            config = uvicorn.Config(build_app(self.ctx), uds=http_socket, lifespan="off", access_log=self.verbose,
                                    log_config=None, log_level="info" if self.verbose else "error",
                                    timeout_keep_alive=30, server_header=False, http=HeaderDeadlineProtocol,
                                    proxy_headers=False)  # clients reach it directly: X-Forwarded-* is theirs
            self._uvicorn = uvicorn.Server(config)
            config.load()
            self._uvicorn.lifespan = config.lifespan_class(config)
            await self._uvicorn.startup()
            self._front.http_protocol = functools.partial(
                config.http_protocol_class, config=config, server_state=self._uvicorn.server_state,
                app_state=self._uvicorn.lifespan.state)
            self._uvicorn_task = asyncio.ensure_future(self._uvicorn.main_loop())
        except BaseException:
            await self.stop()
            raise
        if self.persister is not None:
            self.persister.start()
        log.info("listening on %s", self.url)

    async def stop(self) -> None:
        if self._front is not None:
            await self._front.stop()
            self._front = None
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
            if self._uvicorn_task is not None:
                await asyncio.wait([self._uvicorn_task], timeout=2)
            if self._uvicorn.started:
                self._uvicorn.force_exit = True
                await self._uvicorn.shutdown()
            self._uvicorn = None
        if self._grpc is not None:
            grpc_server, self._grpc = self._grpc, None
            await asyncio.get_running_loop().run_in_executor(None, lambda: grpc_server.stop(0.5).wait(2))
        if self._sockets_dir:
            shutil.rmtree(self._sockets_dir, ignore_errors=True)
            self._sockets_dir = None
        if self.persister is not None:
            self.persister.stop()  # last write of the state
        self.events.close()  # stops webhook deliveries


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """Clients that drop connections or fail the TLS handshake are normal; don't print tracebacks."""
    exc = context.get("exception")
    if isinstance(exc, (ConnectionError, OSError, asyncio.CancelledError)) or "SSL" in str(context.get("message", "")):
        log.debug("connection error: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


def default_data_dir() -> Path:
    return datadir.DEFAULT_DATA_DIR
