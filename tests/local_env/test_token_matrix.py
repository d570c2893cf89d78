"""POST /_local/token-matrix (scalekit_local/token_matrix.py) and its client (scalekit_checks/token_matrix.py).

The valid token must have the documented shape of its kind and verify with the environment's key;
each variant must differ from it by exactly one fault; real validators (the Python SDK with all
checks) must accept the one and refuse the others, and a weakened validator must be caught.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt import PyJWKClient

from scalekit_checks.token_matrix import VARIANTS, MatrixError, fetch_matrix, problems

from .helpers import ACME_ORG, sdk_client

RESOURCE = "res_70000000000004001"
RESOURCE_URL = "http://localhost:8000/mcp"
API = "https://api.acme.test"
USER_CLAIMS = {"iss", "aud", "sub", "oid", "exp", "iat", "nbf", "jti", "sid", "client_id", "roles", "permissions", "scope"}
TIME_CLAIMS = {"iat", "nbf", "exp"}


def matrix(env, kind: str, audience: list[str], scopes=(), **extra):
    return fetch_matrix(env.url, kind, audience, scopes, ca_bundle=env.ca_bundle, **extra)


def unverified(token: str) -> tuple[dict, dict]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


@pytest.fixture(scope="module")
def keys(main_env):
    import ssl

    return PyJWKClient(f"{main_env.url}/keys", ssl_context=ssl.create_default_context(cafile=main_env.ca_bundle))


def verified(keys, token: str, **options) -> dict:
    return jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], **options)


# ---- the valid token ----------------------------------------------------------------------------------
def test_valid_tokens_have_the_documented_shape_of_their_kind(main_env, keys):
    user = matrix(main_env, "user", [main_env.client_id], ["openid", "profile"])
    claims = verified(keys, user.token, audience=main_env.client_id, issuer=main_env.url)
    assert set(claims) == USER_CLAIMS and claims == user.claims
    assert claims["scope"] == "openid profile" and claims["client_id"] == main_env.client_id

    mcp = matrix(main_env, "mcp", [RESOURCE, RESOURCE_URL], ["todo:read", "todo:write"])
    claims = verified(keys, mcp.token, audience=RESOURCE, issuer=main_env.url)
    assert claims["scope"] == "todo:read todo:write" and claims["aud"] == [RESOURCE, RESOURCE_URL]
    assert not {"scopes", "email", "name"} & set(claims)

    m2m = matrix(main_env, "m2m", [API], ["orders:read"])
    claims = verified(keys, m2m.token, audience=API, issuer=main_env.url)
    assert claims["scopes"] == ["orders:read"] and "scope" not in claims and claims["sub"] == claims["client_id"]
    assert claims["oid"] == ACME_ORG

    id_token = matrix(main_env, "id", [main_env.client_id])
    claims = verified(keys, id_token.token, audience=main_env.client_id, issuer=main_env.url)
    assert claims["email"] == "alice@acme.test" and claims["azp"] == main_env.client_id and claims["amr"]


def test_resource_issuer_form(main_env, keys):
    scoped = matrix(main_env, "mcp", [RESOURCE], ["todo:read"], issuer="resource")
    assert verified(keys, scoped.token, audience=RESOURCE)["iss"] == f"{main_env.url}/resources/{RESOURCE}"
    other = unverified(scoped.variant("iss_other_environment").token)[1]["iss"]
    assert other.endswith(f"/resources/{RESOURCE}") and not other.startswith(main_env.url)


# ---- the variants -------------------------------------------------------------------------------------
def test_subject_and_client_id_make_another_user_of_the_same_client(main_env, keys):
    """What a test of per-user state (an MCP session bound to its user) needs: two valid tokens that
    differ only in sub."""
    first = matrix(main_env, "mcp", [RESOURCE, RESOURCE_URL], ["todo:read"])
    other = fetch_matrix(main_env.url, "mcp", [RESOURCE, RESOURCE_URL], ["todo:read"], ca_bundle=main_env.ca_bundle,
                         subject="usr_79999999999999998", client_id=first.claims["client_id"])
    claims = verified(keys, other.token, audience=RESOURCE, issuer=main_env.url)
    assert claims["sub"] == "usr_79999999999999998" != first.claims["sub"]
    assert claims["client_id"] == first.claims["client_id"]


def test_variant_names_are_the_published_set(main_env):
    with_scope = matrix(main_env, "mcp", [RESOURCE], ["todo:read"], required_scope="todo:read")
    assert [v.name for v in with_scope] == list(VARIANTS)
    without = matrix(main_env, "user", [main_env.client_id])
    assert [v.name for v in without] == [n for n in VARIANTS if n != "missing_scope"]
    assert all(v.why and v.why[0].islower() for v in with_scope)


def test_each_variant_has_exactly_one_fault(main_env, keys):
    m = matrix(main_env, "mcp", [RESOURCE, RESOURCE_URL], ["todo:read", "todo:write"], required_scope="todo:write")
    valid_header, valid = unverified(m.token)

    def changed(name: str) -> tuple[dict, dict, set]:
        header, claims = unverified(m.variant(name).token)
        return header, claims, {k for k in valid.keys() | claims.keys() if valid.get(k) != claims.get(k)}

    for name, fault in [("aud_other_resource", {"aud"}), ("aud_other_api", {"aud"}), ("iss_other_environment", {"iss"}),
                        ("missing_scope", {"scope"}), ("forged_signature", set()), ("alg_none", set()),
                        ("hs256_public_key", set()), ("unknown_kid", set())]:
        assert changed(name)[2] == fault, name
    assert changed("missing_scope")[1]["scope"] == "todo:read"
    assert changed("expired")[2] <= TIME_CLAIMS and changed("expired")[1]["exp"] < valid["iat"]
    assert changed("not_yet_valid")[2] == {"nbf", "exp"} and changed("not_yet_valid")[1]["nbf"] > valid["exp"]
    # Signed by the environment's real key: only the claim is wrong.
    for name in ("aud_other_resource", "aud_other_api", "iss_other_environment", "missing_scope"):
        verified(keys, m.variant(name).token, options={"verify_aud": False, "verify_iss": False})
    with pytest.raises(jwt.InvalidSignatureError):
        verified(keys, m.variant("forged_signature").token, options={"verify_aud": False})
    assert changed("forged_signature")[0] == valid_header
    assert changed("unknown_kid")[0]["kid"] != valid_header["kid"]
    assert changed("alg_none")[0]["alg"] == "none" and m.variant("alg_none").token.endswith(".")
    # HS256 keyed with the public key PEM: the signature really is that HMAC.
    pem = keys.get_signing_key(valid_header["kid"]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head, body, sig = m.variant("hs256_public_key").token.split(".")
    expected = base64.urlsafe_b64encode(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()).rstrip(b"=")
    assert sig == expected.decode() and changed("hs256_public_key")[0]["alg"] == "HS256"


def test_client_credentials_variant_is_this_environments_real_token(main_env, keys):
    token = matrix(main_env, "m2m", [API], ["orders:read"]).variant("aud_client_credentials").token
    claims = verified(keys, token, issuer=main_env.url, options={"verify_aud": False})
    assert claims["sub"] == claims["client_id"] == main_env.client_id and "aud" not in claims


# ---- validators against the matrix ----------------------------------------------------------------------
def test_sdk_validators_with_every_check_pass_and_weakened_ones_are_caught(main_env, sdk_env):
    from scalekit.common.scalekit import TokenValidationOptions

    sk = sdk_client(main_env)
    mcp = matrix(main_env, "mcp", [RESOURCE], ["todo:read"], required_scope="todo:read")

    def verify_mcp(token: str, audience=(RESOURCE,), issuer=(main_env.url, f"{main_env.url}/resources/{RESOURCE}")):
        claims = sk.validate_token(token, options=TokenValidationOptions(issuer=list(issuer), audience=list(audience)))
        if "todo:read" not in claims.get("scope", "").split():
            raise PermissionError("todo:read is required")
        return claims

    assert problems(verify_mcp, mcp) == []
    no_audience = problems(lambda t: verify_mcp(t, audience=()), mcp)
    # (the client-credentials token has no `scope`, so the scope check still refuses it)
    assert [p.split(":")[0] for p in no_audience] == ["aud_other_resource", "aud_other_api"]
    assert [p.split(":")[0] for p in problems(lambda t: verify_mcp(t, issuer=()), mcp)] == ["iss_other_environment"]
    wrong_audience = problems(lambda t: verify_mcp(t, audience=("res_70000000000009999",)), mcp)
    assert wrong_audience[0].startswith("valid: the valid token was refused (InvalidAudienceError")

    # The SDK's own scope check reads a `scopes` array: right for M2M tokens, wrong for MCP tokens.
    with_sdk_scopes = lambda t: sk.validate_token(t, options=TokenValidationOptions(  # noqa: E731
        issuer=main_env.url, audience=[RESOURCE], required_scopes=["todo:read"]))
    assert problems(with_sdk_scopes, mcp)[0].startswith("valid: the valid token was refused")
    m2m = matrix(main_env, "m2m", [API], ["orders:read"], required_scope="orders:read")
    assert problems(lambda t: sk.validate_token(t, options=TokenValidationOptions(
        issuer=main_env.url, audience=[API], required_scopes=["orders:read"])), m2m) == []

    unsafe = lambda t: jwt.decode(t, options={"verify_signature": False})  # noqa: E731
    caught = {p.split(":")[0] for p in problems(unsafe, mcp)}
    assert caught == set(VARIANTS)


# ---- bad requests --------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, fragment", [
    ({"audience": ["x"]}, "kind must be one of"),
    ({"kind": "mcp"}, "audience must be"),
    ({"kind": "mcp", "audience": []}, "audience must be"),
    ({"kind": "mcp", "audience": "res_1"}, "audience must be"),
    ({"kind": "mcp", "audience": [""]}, "audience must be"),
    ({"kind": "mcp", "audience": [1]}, "audience must be"),
    ({"kind": "mcp", "audience": ["r"], "scopes": "todo:read"}, "scopes must be"),
    ({"kind": "mcp", "audience": ["r"], "scopes": ["a b"]}, "scopes must be"),
    ({"kind": "mcp", "audience": ["r"], "scopes": ["a"], "required_scope": "b"}, "required_scope must be one of scopes"),
    ({"kind": "user", "audience": ["r"], "issuer": "resource"}, "issuer is only for kind mcp"),
    ({"kind": "mcp", "audience": ["https://x"], "issuer": "resource"}, "needs a resource id"),
    ({"kind": "mcp", "audience": ["res_1"], "issuer": "other"}, "issuer must be"),
    ({"kind": "id", "audience": ["skc_1"], "scopes": ["a"]}, "ID tokens carry no scopes"),
    ({"kind": "mcp", "audience": ["res_1"], "ttl": 5}, "ttl must be"),
    ({"kind": "mcp", "audience": ["res_1"], "ttl": True}, "ttl must be"),
    ({"kind": "mcp", "audience": ["res_1"], "scope": "todo:read"}, "unknown field 'scope'"),
    ({"kind": "m2m", "audience": ["https://x"], "subject": "usr_1"}, "subject must be"),
    ({"kind": "user", "audience": ["skc_1"], "client_id": "m2m_1"}, "client_id must be"),
    ({"kind": "mcp", "audience": ["res_1"], "subject": ""}, "subject must be"),
    ([], "must be a JSON object"),
])
def test_bad_requests_get_an_oauth_error(http, body, fragment):
    resp = http.post("/_local/token-matrix", json=body)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request", resp.text
    assert fragment in resp.json()["error_description"]


@pytest.mark.parametrize("content", [b"", b"not json", b"\xff\xfe", b"[" * 8000 + b"]" * 8000, b"{" + b" " * 20000 + b"}"])
def test_garbage_bodies_get_400_not_500(http, content):
    resp = http.post("/_local/token-matrix", content=content, headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"


def test_cross_site_requests_are_refused(http, main_env):
    body = json.dumps({"kind": "user", "audience": [main_env.client_id]})
    simple = http.post("/_local/token-matrix", content=body, headers={"content-type": "text/plain"})
    assert simple.status_code == 400 and "application/json" in simple.json()["error_description"]
    for headers in ({"origin": "https://evil.example"}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}):
        resp = http.post("/_local/token-matrix", content=body, headers={"content-type": "application/json", **headers})
        assert resp.status_code == 403 and resp.json()["error"] == "access_denied", headers
    same = http.post("/_local/token-matrix", content=body,
                     headers={"content-type": "application/json; charset=utf-8", "origin": main_env.url})
    assert same.status_code == 200 and same.headers["cache-control"] == "no-store"
    assert http.get("/_local/token-matrix").status_code == 405


def test_client_reports_an_unreachable_environment_or_a_refusal(main_env):
    with pytest.raises(MatrixError, match="HTTP 400: .*kind must be one of"):
        fetch_matrix(main_env.url, "nope", ["x"], ca_bundle=main_env.ca_bundle)
    with pytest.raises(MatrixError, match="did not answer"):
        fetch_matrix("https://127.0.0.1:1", "user", ["x"], ca_bundle=main_env.ca_bundle, timeout=2)
