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
        .store          the live state (scalekit_local.store.Store), for tests and admin tools

- seed_path: YAML seed (None: default_seed.yaml next to this file).
- data_dir: where the CA, TLS certificate and signing key live (None: <repo>/.local-scalekit).
- auto_login: email of a seeded user; /oauth/authorize then redirects straight back with a code
  (client, redirect URI, scopes and PKCE are still checked).
- access_token_ttl: seconds an access token lives (also the SDK's own client_credentials token).
- persist: keep the state in <data_dir>/state.sqlite3 across restarts (persistence.py); the seed
  then only fills a new state file.

grpcio reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once per process, before its first secure channel:
set the variables from env_vars() before the Python SDK creates its first client.
"""
from __future__ import annotations

import asyncio
import threading

from .seed import DEFAULT_SEED_PATH, SeedError, load_seed
from .server import Environment, StartupError

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

    def env_vars(self) -> dict[str, str]:
        return self._env.env_vars()
