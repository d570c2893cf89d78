"""AuthService: UpdateLoginUserDetails for the custom-auth bridge (domain/bridge.py).

The SDKs' `auth.update_login_user_details(connection_id, login_request_id, user)` (Python) and
`auth.updateLoginUserDetails(...)` (Node) land here; other AuthService RPCs answer UNIMPLEMENTED.
"""
from __future__ import annotations

import grpc
from google.protobuf.json_format import MessageToDict
from scalekit.v1.auth import auth_pb2 as pb
from scalekit.v1.auth import auth_pb2_grpc as pb_grpc

from ..cross.rpc_errors import abort_with_error
from ..domain.bridge import BridgeError, post_user_details
from .base import Servicer

STATUS = {400: (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
          404: (grpc.StatusCode.NOT_FOUND, "LOGIN_REQUEST_NOT_FOUND"),
          409: (grpc.StatusCode.FAILED_PRECONDITION, "LOGIN_REQUEST_COMPLETED")}


class AuthService(Servicer, pb_grpc.AuthServiceServicer):
    add_to_server = staticmethod(pb_grpc.add_AuthServiceServicer_to_server)

    def UpdateLoginUserDetails(self, request, context):
        user = MessageToDict(request.user, preserving_proto_field_name=True)
        try:
            lrid = post_user_details(self.ctx, request.connection_id, request.login_request_id, user)
        except BridgeError as exc:
            code, error_code = STATUS.get(exc.status, (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"))
            abort_with_error(context, code, error_code, exc.description)
        return pb.UpdateLoginUserDetailsResponse(auth_request_id=lrid)
