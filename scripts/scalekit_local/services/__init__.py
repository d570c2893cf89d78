"""gRPC services of the management API, one module per Scalekit service.

Each module has `register(server, ctx)`. Build servicers with `servicer(base_cls, impl)`: methods of
the SDK's generated base class that `impl` does not define answer UNIMPLEMENTED (without the
traceback grpcio would log for the base class's NotImplementedError). To add a service, write a
module and list it in SERVICE_MODULES.
"""
from __future__ import annotations

import importlib

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

SERVICE_MODULES = ("organizations", "auth", "connections", "domains", "directories", "users", "roles", "sessions", "clients",
                   "api_tokens", "passwordless", "webauthn", "events")


def register_all(server: grpc.Server, ctx) -> None:
    for name in SERVICE_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(server, ctx)


def _unimplemented(name: str):
    def method(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented by the local Scalekit environment")
    method.__name__ = name
    method.unimplemented = True  # coverage.py lists these as not implemented
    return method


def servicer(base_cls: type, impl: type) -> type:
    """A subclass of `base_cls` using `impl`'s methods (its own or inherited from mixins); every other
    RPC answers UNIMPLEMENTED."""
    rpc_names = [n for n, v in vars(base_cls).items() if callable(v) and not n.startswith("_")]
    namespace = {n: _unimplemented(n) for n in rpc_names if not hasattr(impl, n)}
    return type(impl.__name__, (impl, base_cls), namespace)


def abort_with_error(context: grpc.ServicerContext, code: grpc.StatusCode, error_code: str, message: str):
    """Abort with google.rpc.Status details carrying Scalekit's ErrorInfo, which both SDKs turn into
    typed exceptions (NOT_FOUND -> ScalekitNotFoundException with error_code)."""
    from scalekit.v1.errdetails import errdetails_pb2

    detail = any_pb2.Any()
    detail.Pack(errdetails_pb2.ErrorInfo(error_code=error_code))
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    context.abort_with_status(rpc_status.to_status(status))
