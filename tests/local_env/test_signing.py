"""The environment signs its tokens itself (keys/tokens.py, faster than a jwt.encode call per token);
the result must be exactly what PyJWT produces, so SDKs see the same bytes either way."""
from __future__ import annotations

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from scalekit_local.keys.tokens import TokenIssuer

CLAIMS = [
    {"iss": "https://127.0.0.1:8443", "sub": "usr_1", "aud": ["skc_1"], "iat": 1700000000, "exp": 1700000300,
     "roles": ["admin"], "scope": "openid profile"},
    {"name": "Zoë Ångström", "nested": {"b": [1, 2.5, None, True], "a": "\u2603"}, "empty": {}},
]


def test_signed_tokens_are_byte_identical_to_pyjwt():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = TokenIssuer(key, "kid-1")
    for claims in CLAIMS:
        token = issuer.sign(claims)
        assert token == jwt.encode(claims, key, algorithm="RS256", headers={"kid": "kid-1", "typ": "JWT"})
        assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": "kid-1", "typ": "JWT"}
        assert issuer.verify(token, verify_exp=False) == claims
