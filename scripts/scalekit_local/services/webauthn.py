"""WebAuthnService: a user's passkeys: list, rename, delete (what both SDKs call).

Passkeys come from the seed (`users[].passkeys: [{id, display_name}]`); registering and signing in
with a passkey (Begin/Finish Registration and Authentication) need an authenticator and are not
emulated. Documented (developer-docs: List user's passkeys, Rename a passkey, Remove a passkey): only
the display name can be changed; a removed passkey can no longer be used. The relying party id is
the environment's host.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import grpc

from ..store import now
from . import servicer
from ._util import invalid, not_found, ts


def register(server: grpc.Server, ctx) -> None:
    from scalekit.v1.auth import webauthn_pb2 as pb
    from scalekit.v1.auth import webauthn_pb2_grpc as pb_grpc

    store = ctx.store

    def rp_id() -> str:
        return urlsplit(ctx.url).hostname or "localhost"

    def message(p):
        msg = pb.WebAuthnCredential(id=p.id, user_id=p.user_id, credential_id=p.id.encode(), attestation_type="none",
                                    transports=p.transports, created_at=ts(p.created_at), updated_at=ts(p.updated_at))
        msg.authenticator.name = p.authenticator
        msg.authenticator_flags.user_present = True
        msg.authenticator_flags.user_verified = True
        if p.display_name is not None:
            msg.display_name = p.display_name
        return msg

    def find(context, credential_id: str):
        if not credential_id:
            invalid(context, "credential_id is required")
        passkey = store.passkeys.get(credential_id)
        if passkey is None:
            not_found(context, "CREDENTIAL_NOT_FOUND", f"passkey {credential_id} not found")
        return passkey

    class WebAuthn:
        def ListCredentials(self, request, context):
            if not request.user_id:
                invalid(context, "user_id is required")
            if request.user_id not in store.users:
                not_found(context, "USER_NOT_FOUND", f"user {request.user_id} not found")
            with store.lock:
                keys = sorted((p for p in store.passkeys.values() if p.user_id == request.user_id),
                              key=lambda p: (p.created_at, p.id))
                return pb.ListCredentialsResponse(
                    credentials=[message(p) for p in keys],
                    all_accepted_credentials_options=pb.AllAcceptedCredentialsOptions(
                        rp_id=rp_id(), user_id=request.user_id, all_accepted_credential_ids=[p.id for p in keys]))

        def UpdateCredential(self, request, context):
            name = request.display_name.strip()
            if not name or len(name) > 120:
                invalid(context, "display_name must be 1 to 120 characters")
            with store.lock:
                passkey = find(context, request.credential_id)
                passkey.display_name, passkey.updated_at = name, now()
                return pb.UpdateCredentialResponse(credential=message(passkey))

        def DeleteCredential(self, request, context):
            with store.lock:
                passkey = find(context, request.credential_id)
                del store.passkeys[passkey.id]
            return pb.DeleteCredentialResponse(success=True, unknown_credential_options=pb.UnknownCredentialOptions(
                rp_id=rp_id(), credential_id=passkey.id))

    pb_grpc.add_WebAuthnServiceServicer_to_server(servicer(pb_grpc.WebAuthnServiceServicer, WebAuthn)(), server)
