"""OrganizationService: read access to the seeded organizations."""
from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from . import abort_with_error, servicer

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


def _timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def to_message(org, pb):
    from scalekit.v1.commons import commons_pb2

    msg = pb.Organization(
        id=org.id, display_name=org.display_name, create_time=_timestamp(org.created_at),
        update_time=_timestamp(org.updated_at), region_code=commons_pb2.RegionCode.Value(org.region_code),
        metadata=org.metadata,
    )
    if org.external_id is not None:
        msg.external_id = org.external_id
    if org.slug is not None:
        msg.slug = org.slug
    return msg


def register(server: grpc.Server, ctx) -> None:
    from scalekit.v1.organizations import organizations_pb2 as pb
    from scalekit.v1.organizations import organizations_pb2_grpc as pb_grpc

    store = ctx.store

    class Organizations:
        def GetOrganization(self, request, context):
            which = request.WhichOneof("identities")
            if which is None or not getattr(request, which):
                abort_with_error(context, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT",
                                 "organization id or external_id is required")
            org = store.organization(request.id) if which == "id" else store.organization_by_external_id(request.external_id)
            if org is None:
                abort_with_error(context, grpc.StatusCode.NOT_FOUND, "ORGANIZATION_NOT_FOUND", "organization not found")
            return pb.GetOrganizationResponse(organization=to_message(org, pb))

        GetOrganizationByExternalId = GetOrganization

        def ListOrganization(self, request, context):
            orgs = store.list_organizations()
            if request.HasField("external_id"):
                orgs = [o for o in orgs if o.external_id == request.external_id]
            size = request.page_size or DEFAULT_PAGE_SIZE
            if size > MAX_PAGE_SIZE:
                abort_with_error(context, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT",
                                 f"page_size must be at most {MAX_PAGE_SIZE}")
            start = 0
            if request.page_token:
                if not request.page_token.isdigit() or int(request.page_token) > len(orgs):
                    abort_with_error(context, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "invalid page_token")
                start = int(request.page_token)
            page = orgs[start:start + size]
            nxt = start + size
            return pb.ListOrganizationsResponse(
                organizations=[to_message(o, pb) for o in page], total_size=len(orgs),
                next_page_token=str(nxt) if nxt < len(orgs) else "",
                prev_page_token=str(max(start - size, 0)) if start > 0 else "",
            )

    impl = servicer(pb_grpc.OrganizationServiceServicer, Organizations)
    pb_grpc.add_OrganizationServiceServicer_to_server(impl(), server)
