"""ApiTokenService: opaque API keys scoped to an organization and optionally a user.

As documented (developer-docs authenticate/m2m/api-keys.mdx; the SDKs' token clients): the plain key
is returned once, at creation, and only a digest is kept; the id has the form apit_...; every call
takes the key or its id; validation returns the organization, the user, their external ids, the
user's roles and email, and the custom claims; InvalidateToken is idempotent; ListTokens lists the
active keys, 10 per page by default and at most 30; UpdateToken replaces the whole claims map when
claims are given (the Python SDK merges on its side first) and sets the description when given.
Not documented, so chosen here: an unknown, invalidated or expired key answers NOT_FOUND
(TOKEN_NOT_FOUND / TOKEN_EXPIRED); both SDKs turn it into ScalekitValidateTokenFailureException.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

import grpc

from ..records import ApiToken
from ..store import new_id, now
from . import servicer
from ._util import invalid, not_found, paginate, require_org, ts

MAX_PAGE_SIZE = 30


def register(server: grpc.Server, ctx) -> None:
    from google.protobuf.empty_pb2 import Empty
    from scalekit.v1.tokens import tokens_pb2 as pb
    from scalekit.v1.tokens import tokens_pb2_grpc as pb_grpc

    store = ctx.store

    def info(t: ApiToken):
        org = store.organization(t.organization_id)
        msg = pb.Token(token_id=t.id, organization_id=t.organization_id,
                       organization_external_id=(org.external_id or "") if org else "",
                       custom_claims=t.custom_claims, created_at=ts(t.created_at), token_suffix=t.suffix)
        if t.expires_at is not None:
            msg.expiry.CopyFrom(ts(t.expires_at))
        if t.description is not None:
            msg.description = t.description
        user = store.users.get(t.user_id or "")
        if t.user_id:
            msg.user_id = t.user_id
        if user is not None:
            msg.email = user.email
            if user.external_id:
                msg.user_external_id = user.external_id
            membership = user.membership(t.organization_id)
            msg.roles.extend(membership.roles if membership else [])
        return msg

    def find(context, value: str, usable: bool = True) -> ApiToken:
        """The key (or its id, apit_...); usable=True also refuses invalidated and expired keys."""
        if not value:
            invalid(context, "token is required")
        with store.lock:
            token = store.api_tokens.get(value) if value.startswith("apit_") else None
            if token is None:
                digest = hashlib.sha256(value.encode()).hexdigest()
                token = next((t for t in store.api_tokens.values() if hmac.compare_digest(t.digest, digest)), None)
        if token is None or (usable and token.invalidated):
            not_found(context, "TOKEN_NOT_FOUND", "the API token is unknown or was invalidated")
        if usable and token.expires_at is not None and token.expires_at <= now():
            not_found(context, "TOKEN_EXPIRED", "the API token has expired")
        return token

    def check_claims(context, claims) -> dict[str, str]:
        for key in claims:
            if not key.strip():
                invalid(context, "custom claim keys must not be empty")
        return dict(claims)

    class ApiTokens:
        def CreateToken(self, request, context):
            spec = request.token
            org = require_org(context, store, spec.organization_id)
            user_id = spec.user_id or None
            if user_id:
                user = store.users.get(user_id)
                if user is None:
                    not_found(context, "USER_NOT_FOUND", f"user {user_id} not found")
                if user.membership(org.id) is None:
                    invalid(context, f"user {user_id} is not a member of organization {org.id}")
            expires_at = spec.expiry.ToNanoseconds() / 1e9 if spec.HasField("expiry") else None
            if expires_at is not None and expires_at <= now():
                invalid(context, "expiry must be in the future")
            plain = secrets.token_urlsafe(36)
            token = ApiToken(id=new_id("apit"), digest=hashlib.sha256(plain.encode()).hexdigest(), suffix=plain[-4:],
                             organization_id=org.id, user_id=user_id, custom_claims=check_claims(context, spec.custom_claims),
                             description=spec.description or None, expires_at=expires_at)
            with store.lock:
                store.api_tokens[token.id] = token
                return pb.CreateTokenResponse(token=plain, token_id=token.id, token_info=info(token))

        def ValidateToken(self, request, context):
            token = find(context, request.token)
            with store.lock:
                return pb.ValidateTokenResponse(token_info=info(token))

        def InvalidateToken(self, request, context):
            token = find(context, request.token, usable=False)
            with store.lock:
                token.invalidated = True
            return Empty()

        def ListTokens(self, request, context):
            require_org(context, store, request.organization_id)
            if request.page_size > MAX_PAGE_SIZE:
                invalid(context, f"page_size must be at most {MAX_PAGE_SIZE}")
            with store.lock:
                t = now()
                tokens = sorted((k for k in store.api_tokens.values()
                                 if k.organization_id == request.organization_id and not k.invalidated
                                 and (k.expires_at is None or k.expires_at > t)
                                 and (not request.HasField("user_id") or k.user_id == request.user_id)),
                                key=lambda k: (-k.created_at, k.id))
                page, nxt, prev = paginate(context, tokens, request.page_size, request.page_token)
                return pb.ListTokensResponse(tokens=[info(k) for k in page], total_count=len(tokens),
                                             next_page_token=nxt, prev_page_token=prev)

        def UpdateToken(self, request, context):
            token = find(context, request.token)
            with store.lock:
                if request.custom_claims:
                    token.custom_claims = check_claims(context, request.custom_claims)
                if request.HasField("description"):
                    token.description = request.description or None
                return pb.UpdateTokenResponse(token_info=info(token))

    pb_grpc.add_ApiTokenServiceServicer_to_server(servicer(pb_grpc.ApiTokenServiceServicer, ApiTokens)(), server)
