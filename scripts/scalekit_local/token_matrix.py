"""Token matrix: one valid token and single-fault variants, for testing code that validates tokens.

    POST /_local/token-matrix
    {"kind": "mcp" | "user" | "m2m", "audience": [...], "scopes": [...], "required_scope": "...",
     "issuer": "environment" | "resource", "subject": "..."}
    -> {"valid": {"token", "claims"}, "variants": [{"name", "token", "why"}, ...]}

`audience` is required; for `mcp` its first entry is the resource id (res_...). `issuer` picks the
`iss` of every token but `iss_other_environment`: the environment URL (default) or, for `mcp`,
`{environment URL}/resources/{resource id}`. `required_scope` (default: the first of `scopes`) is the
scope the `missing_scope` variant lacks. `subject` (optional) is the `sub` of the tokens (default: the
first seeded user; for `m2m` the environment's M2M client).

Each variant differs from the valid token in exactly one way; code under test must accept `valid`
and refuse every variant (401, or 403 `insufficient_scope` for `missing_scope`). Tokens are shaped as
the hosted service issues them: MCP tokens carry `scope` as a string, no profile claims.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .oauth import NO_STORE, ctx_of, issuer
from .store import new_id

KINDS = ("mcp", "user", "m2m")
OTHER_ENVIRONMENT = "https://other-env.scalekit.test"
OTHER_API = "https://api.other-app.test"
_attacker_key = None  # one throwaway RSA key per process: generating one costs ~50 ms


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header, separators=(',', ':')).encode())}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"


def _attacker():
    global _attacker_key
    if _attacker_key is None:
        _attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _attacker_key


class MatrixError(ValueError):
    pass


def _strings(body: dict, key: str, required: bool) -> list[str]:
    value = body.get(key, [] if not required else None)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or (required and not value):
        raise MatrixError(f"'{key}' must be a {'non-empty ' if required else ''}list of strings")
    return value


def build(ctx, env_url: str, body: dict) -> dict:
    """The matrix for one request body (see the module docstring); raises MatrixError."""
    import jwt

    kind = body.get("kind", "mcp")
    if kind not in KINDS:
        raise MatrixError(f"'kind' must be one of {', '.join(KINDS)}")
    audience = _strings(body, "audience", required=True)
    scopes = _strings(body, "scopes", required=False)
    required = body.get("required_scope", scopes[0] if scopes else None)
    if required is not None and required not in scopes:
        raise MatrixError("'required_scope' must be one of 'scopes'")
    form = body.get("issuer", "environment")
    if form not in ("environment", "resource"):
        raise MatrixError("'issuer' must be 'environment' or 'resource'")
    if form == "resource" and kind != "mcp":
        raise MatrixError("'issuer': 'resource' applies to kind 'mcp' only")
    store = ctx.store
    app_client = store.default_client
    subject = body.get("subject")
    if subject is not None and (not isinstance(subject, str) or not subject):
        raise MatrixError("'subject' must be a non-empty string")
    if subject is None:
        if kind == "m2m":
            subject = next((c.id for c in store.clients.values() if c.type == "m2m"), app_client.id)
        else:
            subject = next(iter(store.users.values())).id

    now = int(time.time())
    iss = f"{env_url}/resources/{audience[0]}" if form == "resource" else env_url
    claims: dict = {"iss": iss, "aud": list(audience), "sub": subject, "jti": new_id("tkn"),
                    "iat": now, "nbf": now, "exp": now + ctx.tokens.access_token_ttl}
    if kind == "m2m":
        claims.update(client_id=subject, scopes=list(scopes))  # M2M tokens: a `scopes` array
    else:
        claims.update(client_id=app_client.id if kind == "user" else "m2m_" + "7" * 17, sid=new_id("ses"),
                      scope=" ".join(scopes))
        if kind == "user":
            claims.update(roles=[], permissions=[])

    def signed(changes: dict) -> str:
        return ctx.tokens.sign({**claims, **changes})

    header = {"alg": "RS256", "kid": ctx.tokens.kid, "typ": "JWT"}
    attacker = _attacker()
    public_pem = ctx.tokens.public_key.public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_input = _unsigned({**header, "alg": "HS256"}, claims)
    other_resource = "res_" + str(int(hashlib.sha256(audience[0].encode()).hexdigest(), 16) % 10**17).zfill(17)
    without = [s for s in scopes if s != required]
    variants = [
        ("aud_other_resource", signed({"aud": [other_resource, "https://other-mcp.example.test/mcp"]}),
         "aud names another resource of the same environment"),
        ("aud_other_api", signed({"aud": [OTHER_API]}), "aud names another API"),
        ("aud_client_credentials", ctx.tokens.client_token(env_url, app_client, []),
         "the app's own client-credentials token (no aud for this resource)"),
        ("iss_other_environment", signed({"iss": OTHER_ENVIRONMENT}), "iss is another environment, same key"),
        ("forged_signature", jwt.encode(claims, attacker, algorithm="RS256", headers=header),
         "signed by another key under the real kid"),
        ("unknown_kid", jwt.encode(claims, attacker, algorithm="RS256",
                                   headers={**header, "kid": "kid_" + secrets.token_hex(8)}),
         "a kid that is not in /keys, signed by that other key"),
        ("alg_none", _unsigned({**header, "alg": "none"}, claims) + ".", "alg none, no signature"),
        ("hs256_public_key", hs_input + "." + _b64(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()),
         "HS256 keyed with the environment's public key"),
        ("expired", signed({"iat": now - 900, "nbf": now - 900, "exp": now - 600}), "expired 10 minutes ago"),
        ("not_yet_valid", signed({"iat": now, "nbf": now + 600, "exp": now + 900}), "nbf is 10 minutes ahead"),
    ]
    if required is not None:
        scope_claim = {"scopes": without} if kind == "m2m" else {"scope": " ".join(without)}
        variants.append(("missing_scope", signed(scope_claim), f"lacks the required scope {required}"))
    ctx.store.count("token_matrix")
    return {"valid": {"token": signed({}), "claims": claims},
            "variants": [{"name": n, "token": t, "why": w} for n, t, w in variants]}


async def token_matrix(request: Request) -> Response:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"error": "invalid_request", "error_description": "the body must be a JSON object"},
                            status_code=400, headers=NO_STORE)
    try:
        doc = build(ctx_of(request), issuer(request), body)
    except MatrixError as exc:
        return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, status_code=400,
                            headers=NO_STORE)
    return JSONResponse(doc, headers=NO_STORE)


def routes() -> list[Route]:
    return [Route("/_local/token-matrix", token_matrix, methods=["POST"])]
