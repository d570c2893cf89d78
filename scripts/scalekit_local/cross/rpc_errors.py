"""A gRPC error as Scalekit answers one: a status code with a google.rpc.Status detail carrying
Scalekit's ErrorInfo, which both SDKs turn into typed exceptions (NOT_FOUND ->
ScalekitNotFoundException with its error_code). Used by the servicers and by injected faults."""
from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status


def abort_with_error(context: grpc.ServicerContext, code: grpc.StatusCode, error_code: str, message: str):
    """Abort the call with `code`, `message` and an ErrorInfo detail naming `error_code`."""
    from scalekit.v1.errdetails import errdetails_pb2

    detail = any_pb2.Any()
    detail.Pack(errdetails_pb2.ErrorInfo(error_code=error_code))
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    context.abort_with_status(rpc_status.to_status(status))
