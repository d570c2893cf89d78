"""ClientService, organization (M2M) clients: a created client's id and plain secret work at
/oauth/token (client_credentials) straight away, with its scopes, audience, custom claims (nested
under `custom_claims` in the token) and expiry (token lifetime in seconds, 3600 when not given, as
documented in developer-docs authenticate/m2m/api-auth-quickstart.mdx). Lists are newest first.
The resource and resource-client RPCs (MCP servers, their clients, secrets and user consents) are
in resource_clients.py."""
from __future__ import annotations

import secrets

import grpc

from ..store import Client, new_id, now
from . import servicer
from ._util import invalid, not_found, paginate, require_org, ts
from .resource_clients import ResourceClients

DEFAULT_EXPIRY = 3600

MAX_SECRETS = 5
SCOPE_CHARS = set("!#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~")


def register(server: grpc.Server, ctx) -> None:
    from google.protobuf.empty_pb2 import Empty
    from scalekit.v1.clients import clients_pb2 as pb
    from scalekit.v1.clients import clients_pb2_grpc as pb_grpc

    store = ctx.store

    def secret_message(s, plain: str = ""):
        return pb.ClientSecret(id=s["id"], create_time=ts(s["created_at"]), update_time=ts(s["created_at"]),
                               secret_suffix=s["secret"][-4:], created_by="local", status=pb.ACTIVE,
                               plain_secret=plain)

    def message(c: Client):
        return pb.M2MClient(
            client_id=c.id, secrets=[secret_message(s) for s in c.secrets], name=c.name, description=c.description,
            organization_id=c.organization_id or "", create_time=ts(c.created_at), update_time=ts(c.created_at),
            scopes=c.scopes, audience=c.audience, expiry=c.expiry,
            custom_claims=[pb.CustomClaim(key=k, value=v) for k, v in c.custom_claims.items()],
        )

    def new_secret(c: Client) -> tuple[dict, str]:
        plain = "test_" + secrets.token_urlsafe(30)
        entry = {"id": new_id("sks"), "secret": plain, "created_at": now()}
        c.secrets.append(entry)
        return entry, plain

    def apply(context, c: Client, spec, creating: bool):
        if creating or spec.name:
            if not spec.name.strip():
                invalid(context, "name is required")
            c.name = spec.name.strip()
        if creating or spec.description:
            c.description = spec.description
        for scope in spec.scopes:
            if not scope or set(scope) - SCOPE_CHARS:
                invalid(context, f"invalid scope {scope!r}")
        if creating or spec.scopes:
            c.scopes = list(dict.fromkeys(spec.scopes))
        if creating or spec.audience:
            c.audience = list(spec.audience)
        if creating or spec.custom_claims:
            claims = {}
            for claim in spec.custom_claims:
                if not claim.key or claim.key in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "oid"):
                    invalid(context, f"custom claim key {claim.key!r} is empty or reserved")
                claims[claim.key] = claim.value
            c.custom_claims = claims
        if spec.expiry < 0:
            invalid(context, "expiry must not be negative")
        if creating or spec.expiry:
            c.expiry = spec.expiry or DEFAULT_EXPIRY

    def find(context, org_id, client_id):
        require_org(context, store, org_id)
        c = store.client(client_id)
        if c is None or c.type != "m2m" or c.organization_id != org_id:
            not_found(context, "CLIENT_NOT_FOUND", f"client {client_id} not found in organization {org_id}")
        return c

    class Clients(ResourceClients):
        def CreateOrganizationClient(self, request, context):
            org = require_org(context, store, request.organization_id)
            c = Client(id=new_id("m2morg"), secret="", type="m2m", organization_id=org.id)
            apply(context, c, request.client, True)
            with store.lock:
                _, plain = new_secret(c)
                store.clients[c.id] = c
                return pb.CreateOrganizationClientResponse(client=message(c), plain_secret=plain)

        def GetOrganizationClient(self, request, context):
            with store.lock:
                return pb.GetOrganizationClientResponse(client=message(find(context, request.organization_id, request.client_id)))

        def ListOrganizationClients(self, request, context):
            require_org(context, store, request.organization_id)
            with store.lock:
                clients = sorted((c for c in store.clients.values()
                                  if c.type == "m2m" and c.organization_id == request.organization_id),
                                 key=lambda c: (-c.created_at, c.id))
                page, nxt, prev = paginate(context, clients, request.page_size, request.page_token)
                return pb.ListOrganizationClientsResponse(clients=[message(c) for c in page], total_size=len(clients),
                                                          next_page_token=nxt, prev_page_token=prev)

        def UpdateOrganizationClient(self, request, context):
            with store.lock:
                c = find(context, request.organization_id, request.client_id)
                apply(context, c, request.client, False)
                return pb.UpdateOrganizationClientResponse(client=message(c))

        def DeleteOrganizationClient(self, request, context):
            with store.lock:
                c = find(context, request.organization_id, request.client_id)
                del store.clients[c.id]
            return Empty()

        def CreateOrganizationClientSecret(self, request, context):
            with store.lock:
                c = find(context, request.organization_id, request.client_id)
                if len(c.secrets) >= MAX_SECRETS:
                    invalid(context, f"a client can have at most {MAX_SECRETS} secrets", "MAX_SECRETS_REACHED")
                entry, plain = new_secret(c)
                return pb.CreateOrganizationClientSecretResponse(plain_secret=plain, secret=secret_message(entry, plain))

        def DeleteOrganizationClientSecret(self, request, context):
            with store.lock:
                c = find(context, request.organization_id, request.client_id)
                if not any(s["id"] == request.secret_id for s in c.secrets):
                    not_found(context, "SECRET_NOT_FOUND", f"secret {request.secret_id} not found")
                c.secrets = [s for s in c.secrets if s["id"] != request.secret_id]
            return Empty()

    Clients.setup(ctx, pb, secret_message)
    impl = servicer(pb_grpc.ClientServiceServicer, Clients)
    pb_grpc.add_ClientServiceServicer_to_server(impl(), server)
