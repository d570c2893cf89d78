"""The gRPC management API: grpcio with the servicer classes shipped in scalekit-sdk-python.

Every call must carry a valid client_credentials access token of an environment client; otherwise
the answer is UNAUTHENTICATED (the Node SDK sends its first call without a token and relies on
that answer). The Python SDK sends `authorization` twice (new token first after a re-auth); any
valid value is accepted. Services live in services/<name>.py; an RPC nobody implements answers
UNIMPLEMENTED.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent import futures

import grpc

from .context import Context
from .faults import FaultInterceptor
from .persistence import ChangeInterceptor

log = logging.getLogger("scalekit_local.grpc")

# The Python SDK pings every 60 s even when idle; grpcio's defaults would answer with
# GOAWAY "too_many_pings" and cost the next call a retry with back-off.
SERVER_OPTIONS = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.so_reuseport", 0),
]


def _deny(request, context):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid access token")


DENY_HANDLER = grpc.unary_unary_rpc_method_handler(_deny)


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._valid: dict[str, tuple[float, str | None]] = {}  # token -> (exp, jti): skip repeated RSA checks
        self._lock = threading.Lock()

    def _token_ok(self, token: str) -> bool:
        with self._lock:
            cached = self._valid.get(token)
        if cached is None:
            claims = self.ctx.tokens.verify(token)
            if claims is None or claims.get("iss") not in self.ctx.known_issuers():
                return False
            client = self.ctx.store.client(claims.get("client_id"))
            # Only the environment's own credentials reach the management API (not users, not M2M).
            if client is None or client.type != "environment" or claims.get("sub") != client.id:
                return False
            cached = (float(claims["exp"]), claims.get("jti"))
            with self._lock:
                if len(self._valid) > 10_000:
                    self._valid.clear()
                self._valid[token] = cached
        exp, jti = cached
        return exp > time.time() and not self.ctx.store.is_revoked(jti)

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method.rsplit("/", 1)[-1]
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization" and value[:7].lower() == "bearer " and self._token_ok(value[7:].strip()):
                self.ctx.store.count(f"grpc.{method}")
                log.debug("gRPC %s", handler_call_details.method)
                return continuation(handler_call_details)
        self.ctx.store.count("grpc.unauthenticated")
        log.debug("gRPC %s -> UNAUTHENTICATED", handler_call_details.method)
        return DENY_HANDLER


def build_server(ctx: Context, address: str) -> grpc.Server:
    """A grpcio server listening on `address` (e.g. unix:/tmp/x/grpc.sock), not started."""
    from .services import register_all

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="sk-grpc"),
                         interceptors=[AuthInterceptor(ctx), FaultInterceptor(ctx), ChangeInterceptor(ctx.store)],
                         options=SERVER_OPTIONS)
    register_all(server, ctx)
    if server.add_insecure_port(address) == 0:
        raise OSError(f"gRPC server could not listen on {address}")
    return server
