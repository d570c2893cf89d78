"""ClientService, resource side: MCP servers (resources) and their clients, secrets and user consents.

Resources are the seed's `resources` (MCP servers, mcp_as.py). Their clients are the clients the MCP
authorization server knows: registered by DCR (is_dcr), created here or in the seed
(`resources[].clients`), each usable at /oauth/authorize and /oauth/token right away. Consents are
recorded when a user approves a client on the consent page (or headlessly with --auto-login).

Documented in the Python SDK's ResourceClient (scalekit/resource.py, "verified against a live
environment") and emulated so: ListResources needs a resource type; a resource's `scopes` lists
every scope of the environment, each marked `enabled` when this resource allows it; a client's
audience is server-determined and cannot be set; an update honours scopes, custom_claims and
redirect_uris (an empty list clears one) and applies a non-empty name or description; a client
holds at most MAX_SECRETS secrets ("only N secrets are allowed") and at least one ("at least one
secret is required"), both INVALID_ARGUMENT; page sizes are at most 30; revoking a consent deletes
it and revokes the refresh tokens issued to that client for that user (access tokens stay valid
until they expire); consents are matched by external user id (exactly with user_ids, at most 25;
case-insensitively as a substring with search; user_ids wins).
"""
from __future__ import annotations

import secrets
import time

from ..records import Consent
from ..store import new_id
from ._util import invalid, not_found, paginate, ts

MAX_SECRETS = 5
MAX_PAGE_SIZE = 30
MAX_USER_IDS = 25


class ResourceClients:
    """Mixin of the ClientService servicer (services/clients.py); setup() gives it the environment."""

    @classmethod
    def setup(cls, ctx, pb, secret_message) -> None:
        cls._ctx, cls._pb, cls._secret_message = ctx, pb, staticmethod(secret_message)

    # ---- helpers ----------------------------------------------------------------------------------
    def _state(self):
        from .. import mcp_as  # the MCP authorization server's state: resources and clients

        return mcp_as.state(self._ctx)

    def _resource(self, context, resource_id: str):
        if not resource_id:
            invalid(context, "resource_id is required")
        resource = self._state().resources.get(resource_id)
        if resource is None:
            not_found(context, "RESOURCE_NOT_FOUND", f"resource {resource_id} not found")
        return resource

    def _client(self, context, client_id: str, resource_id: str | None = None):
        if not client_id:
            invalid(context, "client_id is required")
        st = self._state()
        with st.lock:
            client = st.clients.get(client_id)
        if client is None or (resource_id is not None and client.resource_id != resource_id):
            not_found(context, "CLIENT_NOT_FOUND", f"client {client_id} not found"
                      + (f" for resource {resource_id}" if resource_id else ""))
        return client

    def _resource_message(self, resource):
        pb = self._pb
        everything = sorted({s for r in self._state().resources.values() for s in r.scopes})
        msg = pb.Resource(id=resource.id, name=resource.name, resource_uri=resource.urls[0], resource_id=resource.id,
                          resource_type=pb.MCP_SERVER, disable_dynamic_client_registration=not resource.dcr,
                          enable_cimd=resource.cimd, access_token_expiry=self._ctx.tokens.access_token_ttl,
                          scopes=[pb.Scope(id=f"scope_{name}", name=name, enabled=name in resource.scopes)
                                  for name in everything])
        return msg

    def _client_message(self, client):
        pb = self._pb
        all_secrets = list(client.secrets)
        if client.secret is not None:  # a DCR client's one secret
            all_secrets.insert(0, {"id": f"sks_{client.id.split('_', 1)[-1]}", "secret": client.secret,
                                   "created_at": client.created_at})
        return pb.M2MClient(
            client_id=client.id, name=client.name, description=client.description, resource_id=client.resource_id or "",
            redirect_uris=client.redirect_uris, scopes=client.scopes, expiry=client.expiry,
            audience=[client.resource_id] if client.resource_id else [],
            custom_claims=[pb.CustomClaim(key=k, value=v) for k, v in client.custom_claims.items()],
            secrets=[self._secret_message(s) for s in all_secrets], create_time=ts(client.created_at),
            update_time=ts(client.created_at), is_dcr=bool(client.resource_id) and not client.secrets,
            is_cimd=client.resource_id is None, metadata_uri=client.id if client.resource_id is None else "")

    def _redirect_uris(self, context, uris) -> list[str]:
        from ..mcp_as import redirect_uri_problem

        for uri in uris:
            problem = redirect_uri_problem(uri)
            if problem:
                invalid(context, problem)
        return list(uris)

    def _external_user_id(self, user_id: str) -> str:
        user = self._ctx.store.users.get(user_id)
        return (user.external_id or user.id) if user else user_id

    # ---- resources --------------------------------------------------------------------------------
    def GetResource(self, request, context):
        return self._pb.GetResourceResponse(resource=self._resource_message(self._resource(context, request.resource_id)))

    def ListResources(self, request, context):
        pb = self._pb
        if not request.resource_type:
            invalid(context, "resource_type is required")
        if request.page_size > MAX_PAGE_SIZE:
            invalid(context, f"page_size must be at most {MAX_PAGE_SIZE}")
        resources = list(self._state().resources.values()) if request.resource_type == pb.MCP_SERVER else []
        page, nxt, prev = paginate(context, resources, request.page_size, request.page_token)
        return pb.ListResourcesResponse(resources=[self._resource_message(r) for r in page], total_size=len(resources),
                                        next_page_token=nxt, prev_page_token=prev)

    # ---- resource clients ---------------------------------------------------------------------------
    def CreateResourceClient(self, request, context):
        from ..mcp_as import McpClient

        resource = self._resource(context, request.resource_id)
        spec = request.client
        if spec.audience:
            invalid(context, "audience cannot be set: it is determined by the resource")
        if not spec.name.strip():
            invalid(context, "name is required")
        plain = "sks_" + secrets.token_urlsafe(32)
        client = McpClient(id=new_id("m2m"), resource_id=resource.id, redirect_uris=self._redirect_uris(context, spec.redirect_uris),
                           name=spec.name.strip(), auth_method="client_secret_basic", description=spec.description,
                           scopes=list(dict.fromkeys(spec.scopes)), expiry=spec.expiry,
                           custom_claims={c.key: c.value for c in spec.custom_claims},
                           secrets=[{"id": new_id("sks"), "secret": plain, "created_at": time.time()}])
        st = self._state()
        with st.lock:
            st.clients[client.id] = client
        self._ctx.store.count("mcp.resource_client_created")
        return self._pb.CreateResourceClientResponse(client=self._client_message(client), plain_secret=plain)

    def GetResourceClient(self, request, context):
        self._resource(context, request.resource_id)
        client = self._client(context, request.client_id, request.resource_id)
        store = self._ctx.store
        with store.lock:
            users = [self._pb.ConsentedUser(consent_id=c.id, external_user_id=self._external_user_id(c.user_id), scopes=c.scopes)
                     for c in store.consents.values() if c.client_id == client.id]
        return self._pb.GetResourceClientResponse(client=self._client_message(client), consented_users=users)

    def ListResourceClients(self, request, context):
        resource = self._resource(context, request.resource_id)
        st = self._state()
        with st.lock:
            clients = sorted((c for c in st.clients.values() if c.resource_id == resource.id),
                             key=lambda c: (-c.created_at, c.id))
        messages = [self._client_message(c) for c in clients]
        dcr = sum(1 for m in messages if m.is_dcr)
        return self._pb.ListResourceClientsResponse(clients=messages, total_dcr_clients=dcr,
                                                     total_static_clients=len(messages) - dcr)

    def UpdateResourceClient(self, request, context):
        self._resource(context, request.resource_id)
        client = self._client(context, request.client_id, request.resource_id)
        spec, paths = request.client, set(request.update_mask.paths)
        if spec.audience:
            invalid(context, "audience cannot be set: it is determined by the resource")
        st = self._state()
        with st.lock:
            if spec.name.strip():
                client.name = spec.name.strip()
            if spec.description:
                client.description = spec.description
            if "scopes" in paths:
                client.scopes = list(dict.fromkeys(spec.scopes))
            if "custom_claims" in paths:
                client.custom_claims = {c.key: c.value for c in spec.custom_claims}
            if "redirect_uris" in paths:
                client.redirect_uris = self._redirect_uris(context, spec.redirect_uris)
        return self._pb.UpdateResourceClientResponse(client=self._client_message(client))

    def DeleteResourceClient(self, request, context):
        self._resource(context, request.resource_id)
        client = self._client(context, request.client_id, request.resource_id)
        st = self._state()
        with st.lock:
            st.clients.pop(client.id, None)
        return self._pb.DeleteResourceClientResponse()

    # ---- secrets (keyed by client id alone) -----------------------------------------------------------
    def CreateClientSecret(self, request, context):
        client = self._client(context, request.client_id)
        st = self._state()
        with st.lock:
            if len(client.secrets) + (client.secret is not None) >= MAX_SECRETS:
                invalid(context, f"only {MAX_SECRETS} secrets are allowed")
            plain = "sks_" + secrets.token_urlsafe(32)
            entry = {"id": new_id("sks"), "secret": plain, "created_at": time.time()}
            client.secrets.append(entry)
        return self._pb.CreateClientSecretResponse(plain_secret=plain, secret=self._secret_message(entry, plain))

    def DeleteClientSecret(self, request, context):
        from google.protobuf.empty_pb2 import Empty

        client = self._client(context, request.client_id)
        st = self._state()
        with st.lock:
            if not any(s["id"] == request.secret_id for s in client.secrets):
                not_found(context, "SECRET_NOT_FOUND", f"secret {request.secret_id} not found")
            if len(client.secrets) + (client.secret is not None) <= 1:
                invalid(context, "at least one secret is required")
            client.secrets = [s for s in client.secrets if s["id"] != request.secret_id]
        return Empty()

    # ---- user consents --------------------------------------------------------------------------------
    def ListResourceUserConsents(self, request, context):
        resource = self._resource(context, request.resource_id)
        if request.page_size > MAX_PAGE_SIZE:
            invalid(context, f"page_size must be at most {MAX_PAGE_SIZE}")
        wanted = list(request.filter.external_user_id)
        if len(wanted) > MAX_USER_IDS:
            invalid(context, f"at most {MAX_USER_IDS} user ids are allowed")
        store, st = self._ctx.store, self._state()
        with store.lock:
            consents = [c for c in store.consents.values() if c.resource_id == resource.id]
            rows = [(c, self._external_user_id(c.user_id)) for c in sorted(consents, key=lambda c: (-c.granted_at, c.id))]
        if wanted:
            rows = [(c, ext) for c, ext in rows if ext in wanted]
        elif request.search:
            rows = [(c, ext) for c, ext in rows if request.search.lower() in ext.lower()]
        page, nxt, prev = paginate(context, rows, request.page_size, request.page_token)

        def name_of(client_id: str) -> str:
            with st.lock:
                client = st.clients.get(client_id)
            return client.name if client and client.name else client_id

        return self._pb.ListResourceUserConsentsResponse(
            consents=[self._pb.ResourceUserConsent(id=c.id, external_user_id=ext, client_id=c.client_id,
                                                   client_name=name_of(c.client_id), scopes=c.scopes,
                                                   granted_at=ts(c.granted_at)) for c, ext in page],
            total_size=len(rows), next_page_token=nxt, prev_page_token=prev)

    def RevokeUserConsent(self, request, context):
        store = self._ctx.store
        with store.lock:
            consent: Consent | None = store.consents.get(request.consent_id)
            if consent is None or consent.client_id != request.client_id:
                not_found(context, "CONSENT_NOT_FOUND", f"consent {request.consent_id} of client {request.client_id} not found")
            del store.consents[consent.id]
            store.revoke_client_refresh_tokens(consent.user_id, consent.client_id)
        return self._pb.RevokeUserConsentResponse()
