"""ConnectionService: the organizations' enterprise SSO connections (the ones /oauth/authorize routes to),
and the environment's own connections: the social login providers and the password connection of the
seed, plus connections created with CreateEnvironmentConnection (or seeded as
`environment.app_connections`); ListAppConnections lists those flagged is_app, newest first, at most
30 per page, filtered by provider and by a 3 to 100 character query on name or provider."""
from __future__ import annotations

import grpc

from ..records import EnvConnection, sync_connection_domains
from ..store import Connection, new_id, now
from . import servicer
from ._util import invalid, not_found, paginate, require_org, ts

MAX_APP_PAGE_SIZE = 30


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

    def env_connections() -> list[EnvConnection]:
        """Built-in (password, social providers) and created environment connections."""
        built_in = [EnvConnection(id=store.password_connection_id, type="PASSWORD", provider="CONNECTION_PROVIDER_UNSPECIFIED",
                                  provider_key="password", key_id="password", is_login=True, is_app=False,
                                  ui_button_title="Email and password")]
        built_in += [EnvConnection(id=p.connection_id, type="OAUTH", provider=p.provider.upper(), provider_key=p.provider,
                                   key_id=p.provider, is_login=True, is_app=False, enabled=p.enabled,
                                   ui_button_title=f"Sign in with {p.provider.title()}") for p in store.providers.values()]
        return built_in + sorted(store.env_connections.values(), key=lambda c: (-c.created_at, c.id))

    def env_full(c: EnvConnection):
        msg = pb.Connection(id=c.id, provider=pb.ConnectionProvider.Value(c.provider), type=pb.ConnectionType.Value(c.type),
                            status=pb.COMPLETED, enabled=c.enabled, ui_button_title=c.ui_button_title,
                            create_time=ts(c.created_at), update_time=ts(c.updated_at), provider_key=c.provider_key,
                            key_id=c.key_id)
        return msg

    def env_listed(c: EnvConnection):
        return pb.ListConnection(id=c.id, provider=pb.ConnectionProvider.Value(c.provider), type=pb.ConnectionType.Value(c.type),
                                 status=pb.COMPLETED, enabled=c.enabled, ui_button_title=c.ui_button_title,
                                 provider_key=c.provider_key, key_id=c.key_id, created_at=ts(c.created_at))

    def find_env(context, connection_id):
        if not connection_id:
            invalid(context, "connection_id is required")
        conn = next((c for c in env_connections() if c.id == connection_id), None)
        if conn is None:
            not_found(context, "CONNECTION_NOT_FOUND", f"environment connection {connection_id} not found")
        return conn

    class Connections:
        def GetEnvironmentConnection(self, request, context):
            with store.lock:
                return pb.GetConnectionResponse(connection=env_full(find_env(context, request.connection_id)))

        def CreateEnvironmentConnection(self, request, context):
            spec = request.connection
            if not spec.type:
                invalid(context, "connection.type is required")
            flags = request.flags if request.HasField("flags") else pb.Flags(is_app=True)
            conn = EnvConnection(id=new_id("conn"), type=pb.ConnectionType.Name(spec.type),
                                 provider=pb.ConnectionProvider.Name(spec.provider), provider_key=spec.provider_key,
                                 key_id=spec.key_id if spec.HasField("key_id") else spec.provider_key,
                                 is_login=flags.is_login, is_app=flags.is_app or not flags.is_login,
                                 ui_button_title=spec.provider_key.title())
            with store.lock:
                store.env_connections[conn.id] = conn
                return pb.CreateConnectionResponse(connection=env_full(conn))

        def UpdateEnvironmentConnection(self, request, context):
            spec = request.connection
            with store.lock:
                conn = find_env(context, request.connection_id)
                if conn.id not in store.env_connections:
                    invalid(context, "the password and social login connections are configured in the seed")
                if spec.HasField("ui_button_title"):
                    conn.ui_button_title = spec.ui_button_title.value
                if spec.HasField("key_id"):
                    conn.key_id = spec.key_id
                if spec.provider_key:
                    conn.provider_key = spec.provider_key
                conn.updated_at = now()
                return pb.UpdateConnectionResponse(connection=env_full(conn))

        def ListAppConnections(self, request, context):
            if request.page_size > MAX_APP_PAGE_SIZE:
                invalid(context, f"page_size must be at most {MAX_APP_PAGE_SIZE}")
            query = request.query.strip().lower() if request.HasField("query") else ""
            if request.HasField("query") and not 3 <= len(query) <= 100:
                invalid(context, "query must be 3 to 100 characters")
            with store.lock:
                conns = [c for c in env_connections() if c.is_app]
            if request.HasField("provider") and request.provider:
                conns = [c for c in conns if c.provider_key.lower() == request.provider.lower()
                         or c.provider == request.provider.upper()]
            if query:
                conns = [c for c in conns if query in c.key_id.lower() or query in c.provider_key.lower()]
            page, nxt, prev = paginate(context, conns, request.page_size, request.page_token)
            return pb.ListAppConnectionsResponse(connections=[env_listed(c) for c in page], next_page_token=nxt,
                                                 prev_page_token=prev, total_size=len(conns))

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
