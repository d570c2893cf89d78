"""Signing and checking JWTs shaped as Scalekit issues them (RS256, kid in the header)."""
from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from jwt.algorithms import RSAAlgorithm

from ..ids import new_id


class TokenIssuer:
    def __init__(self, signing_key, kid: str, access_token_ttl: int = 300, id_token_ttl: int = 3600):
        self.key = signing_key
        self.public_key = signing_key.public_key()
        self.kid = kid
        self.access_token_ttl = access_token_ttl
        self.id_token_ttl = id_token_ttl
        jwk = RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        self.jwks = {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": jwk["n"], "e": jwk["e"]}]}
        self._header = _b64(json.dumps({"alg": "RS256", "kid": kid, "typ": "JWT"}, separators=(",", ":"),
                                       sort_keys=True).encode())

    def sign(self, claims: dict[str, Any]) -> str:
        """The claims as an RS256 JWT with the kid. Byte for byte what jwt.encode(claims, key, "RS256",
        headers={"kid": kid, "typ": "JWT"}) returns (a test compares them), without PyJWT's per-call
        header encoding, key checks and claim copying: a login signs two tokens."""
        signing_input = self._header + b"." + _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return (signing_input + b"." + _b64(signature)).decode()

    def verify(self, token: str, *, verify_exp: bool = True) -> dict[str, Any] | None:
        """Claims of a token this environment signed, or None (bad signature, expired, malformed)."""
        try:
            if jwt.get_unverified_header(token).get("kid") != self.kid:
                return None
            return jwt.decode(token, self.public_key, algorithms=["RS256"],
                              options={"verify_aud": False, "verify_exp": verify_exp, "verify_iat": False})
        except jwt.PyJWTError:
            return None

    # ---- token shapes -------------------------------------------------------------------
    def _times(self, ttl: int) -> dict[str, int]:
        issued = int(time.time())
        return {"iat": issued, "nbf": issued, "exp": issued + ttl}

    def client_ttl(self, client) -> int:
        """Lifetime of a client_credentials token: the client's own expiry, else the environment's."""
        return client.expiry or self.access_token_ttl

    def client_token(self, issuer: str, client, scopes: list[str]) -> str:
        claims: dict[str, Any] = {
            "iss": issuer, "sub": client.id, "client_id": client.id, "jti": new_id("tkn"),
            **self._times(self.client_ttl(client)),
        }
        if client.audience:
            claims["aud"] = list(client.audience)
        if client.organization_id:
            claims["oid"] = client.organization_id
        # M2M tokens carry the granted scopes as a `scopes` array and no `scope` string
        # (authenticate/m2m/api-auth-quickstart.mdx); the token response has the string.
        claims["scopes"] = list(scopes)
        if client.custom_claims:
            # Nested, as Scalekit shows an M2M token's claims (developer-docs reference/interceptors/
            # triggers.mdx, PRE_M2M_TOKEN_CREATION: claims.custom_claims holds the client's custom claims).
            claims["custom_claims"] = dict(client.custom_claims)
        return self.sign(claims)

    def user_tokens(self, issuer: str, client, user, org_id: str | None, session_id: str, connection_id: str,
                    scopes: list[str], nonce: str | None, roles: list[str], permissions: list[str],
                    custom_claims: dict[str, Any], id_subject: str | None = None) -> tuple[str, str]:
        """(access_token, id_token) for a user login or refresh; roles, permissions and custom claims as
        the store computes them (Store.user_claims).

        The access token carries exactly the documented claims (authenticate/fsa/complete-login.mdx):
        no email or name (they are in the ID token and at /userinfo) and `scope` as a string, no
        `scopes` array."""
        access: dict[str, Any] = {
            "iss": issuer, "aud": [client.id], "sub": user.id, "client_id": client.id, "jti": new_id("tkn"),
            "sid": session_id, "roles": roles, "permissions": permissions, "scope": " ".join(scopes),
            **self._times(self.access_token_ttl),
        }
        if org_id:
            access["oid"] = org_id
        access.update(custom_claims)  # they never override the defaults (token_claims.RESERVED)
        access_token = self.sign(access)

        digest = hashlib.sha256(access_token.encode()).digest()
        at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
        idt: dict[str, Any] = {
            "iss": issuer, "aud": [client.id], "azp": client.id, "client_id": client.id, "sub": id_subject or user.id,
            "sid": session_id, "amr": [connection_id], "at_hash": at_hash, "auth_time": int(time.time()),
            "email": user.email, "email_verified": user.email_verified, "name": user.display_name,
            **self._times(self.id_token_ttl),
        }
        if user.given_name:
            idt["given_name"] = user.given_name
        if user.family_name:
            idt["family_name"] = user.family_name
        if org_id:
            idt["oid"] = org_id
        if nonce:
            idt["nonce"] = nonce
        return access_token, self.sign(idt)


def _b64(data: bytes) -> bytes:
    """base64url without padding, as JWTs encode their parts."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")
