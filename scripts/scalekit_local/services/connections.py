"""ConnectionService: the organizations' enterprise SSO connections (the ones /oauth/authorize routes to)."""
from __future__ import annotations

import grpc

from ..records import sync_connection_domains
from ..store import Connection, new_id
from . import servicer
from ._util import invalid, not_found, require_org, ts


def register(server: grpc.Server, ctx) -> None:
    from google.protobuf.empty_pb2 import Empty
    from scalekit.v1.connections import connections_pb2 as pb
    from scalekit.v1.connections import connections_pb2_grpc as pb_grpc
    from scalekit.v1.domains import domains_pb2 as dpb

    store = ctx.store

    def provider_value(conn):
        try:
            return pb.ConnectionProvider.Value(conn.provider)
        except ValueError:
            return pb.CUSTOM

    def full(conn):
        org_domains = [d for d in store.domains.values() if d.organization_id == conn.organization_id
                       and d.domain in conn.domains]
        msg = pb.Connection(
            id=conn.id, provider=provider_value(conn), type=pb.ConnectionType.Value(conn.type), status=pb.COMPLETED,
            enabled=conn.enabled, organization_id=conn.organization_id, ui_button_title=f"Sign in with {conn.provider.title()}",
            create_time=ts(getattr(conn, "created_at", None) or 0), update_time=ts(getattr(conn, "created_at", None) or 0),
            provider_key=conn.provider, test_connection_uri=f"{ctx.url}/ui/idp?connection_id={conn.id}",
            domains=[dpb.Domain(id=d.id, domain=d.domain, organization_id=d.organization_id,
                                verification_status=dpb.VerificationStatus.Value(d.verification_status),
                                domain_type=dpb.DomainType.Value(d.domain_type)) for d in org_domains],
        )
        if conn.type == "SAML":
            msg.saml_config.sp_entity_id = f"{ctx.url}/sso/v1/saml/{conn.id}"
            msg.saml_config.sp_assertion_url = f"{ctx.url}/sso/v1/saml/{conn.id}/acs"
            msg.saml_config.sp_metadata_url = f"{ctx.url}/sso/v1/saml/{conn.id}/metadata"
        else:
            msg.oidc_config.redirect_uri = f"{ctx.url}/sso/v1/oidc/{conn.id}/callback"
        return msg

    def listed(conn):
        org = store.organization(conn.organization_id)
        return pb.ListConnection(
            id=conn.id, provider=provider_value(conn), type=pb.ConnectionType.Value(conn.type), status=pb.COMPLETED,
            enabled=conn.enabled, organization_id=conn.organization_id, domains=list(conn.domains),
            organization_name=org.display_name if org else "", provider_key=conn.provider,
            ui_button_title=f"Sign in with {conn.provider.title()}",
        )

    def find(request, context):
        require_org(context, store, request.organization_id)
        conn = store.connection(request.id)
        if conn is None or conn.organization_id != request.organization_id:
            not_found(context, "CONNECTION_NOT_FOUND", f"connection {request.id} not found in organization {request.organization_id}")
        return conn

    class Connections:
        def GetConnection(self, request, context):
            return pb.GetConnectionResponse(connection=full(find(request, context)))

        def ListConnections(self, request, context):
            with store.lock:
                conns = sorted(store.connections.values(), key=lambda c: c.id)
                if request.HasField("organization_id") and request.organization_id:
                    require_org(context, store, request.organization_id)
                    conns = [c for c in conns if c.organization_id == request.organization_id]
                elif request.HasField("domain") and request.domain:
                    domain = request.domain.strip().lower()
                    owners = {d.organization_id for d in store.domains.values() if d.domain == domain}
                    conns = [c for c in conns if domain in c.domains or c.organization_id in owners]
                else:
                    invalid(context, "organization_id or domain is required")
                return pb.ListConnectionsResponse(connections=[listed(c) for c in conns])

        def EnableConnection(self, request, context):
            conn = find(request, context)
            conn.enabled = True
            return pb.ToggleConnectionResponse(enabled=True)

        def DisableConnection(self, request, context):
            conn = find(request, context)
            conn.enabled = False
            return pb.ToggleConnectionResponse(enabled=False)

        def CreateConnection(self, request, context):
            org = require_org(context, store, request.organization_id)
            new = request.connection
            if new.type not in (pb.SAML, pb.OIDC):
                invalid(context, "type must be SAML or OIDC")
            provider = pb.ConnectionProvider.Name(new.provider) if new.provider else "CUSTOM"
            conn = Connection(new_id("conn"), org.id, pb.ConnectionType.Name(new.type), provider, [], enabled=False)
            with store.lock:
                store.connections[conn.id] = conn
                sync_connection_domains(store, org.id)
            return pb.CreateConnectionResponse(connection=full(conn))

        def DeleteConnection(self, request, context):
            conn = find(request, context)
            with store.lock:
                store.connections.pop(conn.id, None)
            return Empty()

    impl = servicer(pb_grpc.ConnectionServiceServicer, Connections)
    pb_grpc.add_ConnectionServiceServicer_to_server(impl(), server)
