"""The gRPC side with raw grpcio stubs from the SDK package: authentication and unimplemented RPCs."""
from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from scalekit.v1.organizations import organizations_pb2 as org_pb
from scalekit.v1.organizations import organizations_pb2_grpc as org_grpc
from scalekit.v1.users import users_pb2, users_pb2_grpc

from .helpers import ACME_ORG, M2M_ID, M2M_SECRET, exchange, headless_code


@pytest.fixture(scope="module")
def channel(autologin):
    # Explicit roots, so this does not depend on GRPC_DEFAULT_SSL_ROOTS_FILE_PATH.
    creds = grpc.ssl_channel_credentials(root_certificates=Path(autologin.ca_cert).read_bytes())
    with grpc.secure_channel(autologin.url.split("//")[1], creds) as chan:
        yield chan


def _client_token(http, client_id, secret) -> str:
    resp = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    return resp.json()["access_token"]


def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


def test_missing_or_bad_token_is_unauthenticated(channel):
    stub = org_grpc.OrganizationServiceStub(channel)
    request = org_pb.GetOrganizationRequest(id=ACME_ORG)
    assert _code(lambda: stub.GetOrganization(request, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
    bad = (("authorization", "Bearer not-a-jwt"),)
    assert _code(lambda: stub.GetOrganization(request, metadata=bad, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
    # Unknown methods are refused the same way before anything else.
    users = users_pb2_grpc.UserServiceStub(channel)
    assert _code(lambda: users.GetUser(users_pb2.GetUserRequest(id="usr_1"), timeout=5)) == grpc.StatusCode.UNAUTHENTICATED


def test_user_and_m2m_tokens_do_not_open_the_management_api(channel, auto_http, autologin):
    stub = org_grpc.OrganizationServiceStub(channel)
    user_token = exchange(auto_http, autologin, headless_code(auto_http, autologin.client_id)).json()["access_token"]
    m2m_token = _client_token(auto_http, M2M_ID, M2M_SECRET)
    for token in (user_token, m2m_token):
        meta = (("authorization", f"Bearer {token}"),)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetOrganization(org_pb.GetOrganizationRequest(id=ACME_ORG), metadata=meta, timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_duplicate_authorization_headers_any_valid_one_counts(channel, auto_http, autologin):
    token = _client_token(auto_http, autologin.client_id, autologin.client_secret)
    stub = org_grpc.OrganizationServiceStub(channel)
    meta = (("authorization", f"Bearer {token}"), ("authorization", "Bearer stale-token"))
    assert stub.GetOrganization(org_pb.GetOrganizationRequest(id=ACME_ORG), metadata=meta, timeout=5).organization.id == ACME_ORG
    meta = (("authorization", "Bearer stale-token"), ("authorization", f"Bearer {token}"))
    assert stub.GetOrganization(org_pb.GetOrganizationRequest(id=ACME_ORG), metadata=meta, timeout=5).organization.id == ACME_ORG


def test_rpcs_nobody_implements_answer_unimplemented(channel, auto_http, autologin):
    from scalekit.v1.tools import tools_pb2, tools_pb2_grpc

    meta = (("authorization", f"Bearer {_client_token(auto_http, autologin.client_id, autologin.client_secret)}"),)
    tools = tools_pb2_grpc.ToolServiceStub(channel)  # AgentKit: outside what the local environment emulates
    code = _code(lambda: tools.ListTools(tools_pb2.ListToolsRequest(), metadata=meta, timeout=5))
    assert code == grpc.StatusCode.UNIMPLEMENTED


def test_servicer_helper_answers_unimplemented_for_missing_methods(tmp_path, caplog):
    """services.servicer(): an RPC of the SDK's base class that the implementation leaves out is
    UNIMPLEMENTED, quietly (the base class would log a NotImplementedError traceback)."""
    from concurrent import futures

    from scalekit_local.services.base import servicer

    class OnlyGet:
        def GetOrganization(self, request, context):
            return org_pb.GetOrganizationResponse(organization=org_pb.Organization(id=request.id))

    server = grpc.server(futures.ThreadPoolExecutor(2))
    org_grpc.add_OrganizationServiceServicer_to_server(servicer(org_grpc.OrganizationServiceServicer, OnlyGet)(), server)
    address = f"unix:{tmp_path}/g.sock"
    server.add_insecure_port(address)
    server.start()
    try:
        with grpc.insecure_channel(address) as chan:
            stub = org_grpc.OrganizationServiceStub(chan)
            assert stub.GetOrganization(org_pb.GetOrganizationRequest(id="org_1"), timeout=5).organization.id == "org_1"
            with pytest.raises(grpc.RpcError) as info:
                stub.DeleteOrganization(org_pb.DeleteOrganizationRequest(id="org_1"), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert "DeleteOrganization" in info.value.details()
    finally:
        server.stop(0)
    assert "Traceback" not in caplog.text and "NotImplementedError" not in caplog.text


def test_invalid_arguments(channel, auto_http, autologin):
    meta = (("authorization", f"Bearer {_client_token(auto_http, autologin.client_id, autologin.client_secret)}"),)
    orgs = org_grpc.OrganizationServiceStub(channel)
    assert _code(lambda: orgs.GetOrganization(org_pb.GetOrganizationRequest(), metadata=meta, timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT
    bad_page = org_pb.ListOrganizationsRequest(page_token="not-a-token")
    assert _code(lambda: orgs.ListOrganization(bad_page, metadata=meta, timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT
    too_big = org_pb.ListOrganizationsRequest(page_size=1000)
    assert _code(lambda: orgs.ListOrganization(too_big, metadata=meta, timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT
