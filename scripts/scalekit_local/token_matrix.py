"""The token matrix: one valid token and single-fault variants, for testing code that validates tokens.

    POST /_local/token-matrix        Content-Type: application/json (test-only; cross-site requests refused)

Request::

    {"kind": "mcp" | "user" | "m2m" | "id",   # shape of the valid token, as the hosted service issues it
     "audience": ["res_..."],                  # aud of the valid token (mcp: resource id [+ its URL];
                                               #   user and id: the app's client id; m2m: the API audience)
     "scopes": ["todo:read"],                  # scopes the valid token carries (not for id)
     "required_scope": "todo:write",           # optional: adds `missing_scope` (valid token minus this scope)
     "issuer": "resource" | "environment",     # optional, mcp only (default environment: iss = env URL)
     "ttl": 3600,                              # optional: seconds the valid token lives (60..86400)
     "subject": "usr_...",                     # optional, not m2m: sub (default: the first seeded user)
     "client_id": "m2m_..."}                   # optional, mcp only: client_id (default: a new one)

Answer 200::

    {"valid": {"token": "<jwt>", "claims": {...}},
     "variants": [{"name": "aud_other_resource", "token": "<jwt>", "why": "..."}, ...]}

Variants, each the valid token with one fault: aud_other_resource, aud_other_api,
aud_client_credentials (this environment's client-credentials token for the app itself),
iss_other_environment, forged_signature, unknown_kid, alg_none, hs256_public_key, expired,
not_yet_valid, and missing_scope when required_scope is given. Errors are RFC 6749-style JSON
(`{"error", "error_description"}`), 400 for a bad request and 403 for a cross-site one.

Claim sets follow Scalekit's docs: user access tokens authenticate/fsa/complete-login.mdx
("Access token claims reference"), M2M tokens authenticate/m2m/api-auth-quickstart.mdx (`scopes`
array), MCP tokens `scope` as a string (authenticate/mcp/auth-patterns.mdx), ID tokens the
"ID token claims reference" of complete-login.mdx.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .store import new_id

KINDS = ("mcp", "user", "m2m", "id")
FIELDS = {"kind", "audience", "scopes", "required_scope", "issuer", "ttl", "subject", "client_id"}
MAX_BODY = 16 * 1024
DEFAULT_TTL = 3600
OTHER_ENVIRONMENT = "https://another-env.scalekit.dev"
OTHER_API = "https://api.other-service.example"
OTHER_RESOURCE = "res_79999999999999999"
UNKNOWN_KID = "snk_79999999999999999"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")  # RFC 6749 scope-token characters
_attacker_key: rsa.RSAPrivateKey | None = None
_attacker_lock = threading.Lock()


class BadRequest(Exception):
    pass


def attacker_key() -> rsa.RSAPrivateKey:
    """A key this environment never publishes; made once per process."""
    global _attacker_key
    with _attacker_lock:
        if _attacker_key is None:
            _attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _attacker_key


# ---- JWT assembly (variants need headers and signatures PyJWT will not produce) ------------------
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(header: dict, claims: dict) -> str:
    dump = lambda d: b64url(json.dumps(d, separators=(",", ":")).encode())  # noqa: E731
    return f"{dump(header)}.{dump(claims)}"


def rs256(key: rsa.RSAPrivateKey, header: dict, claims: dict) -> str:
    import jwt

    return jwt.encode(claims, key, algorithm="RS256", headers={k: v for k, v in header.items() if k != "alg"})


def hs256(secret: bytes, header: dict, claims: dict) -> str:
    signing_input = segments(header, claims)
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


# ---- the request -------------------------------------------------------------------------------
def parse(body: Any) -> dict:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(FIELDS))})")
    kind = body.get("kind")
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}")
    audience = body.get("audience")
    if (not isinstance(audience, list) or not audience or len(audience) > 10
            or not all(isinstance(a, str) and 0 < len(a) <= 500 and a.strip() == a for a in audience)):
        raise BadRequest("audience must be a non-empty array of up to 10 non-empty strings")
    scopes = body.get("scopes", [])
    if not isinstance(scopes, list) or len(scopes) > 50 or not all(isinstance(s, str) and _SCOPE.match(s) for s in scopes):
        raise BadRequest("scopes must be an array of up to 50 scope strings (no spaces or quotes)")
    if kind == "id" and scopes:
        raise BadRequest("ID tokens carry no scopes; leave scopes out for kind id")
    required = body.get("required_scope")
    if required is not None:
        if not isinstance(required, str) or required not in scopes:
            raise BadRequest("required_scope must be one of scopes (the valid token carries it; missing_scope drops it)")
    issuer = body.get("issuer")
    if issuer is not None:
        if kind != "mcp":
            raise BadRequest("issuer is only for kind mcp")
        if issuer not in ("resource", "environment"):
            raise BadRequest("issuer must be resource or environment")
        if issuer == "resource" and not any(a.startswith("res_") for a in audience):
            raise BadRequest("issuer resource needs a resource id (res_...) in audience")
    ttl = body.get("ttl", DEFAULT_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 60 <= ttl <= 86400:
        raise BadRequest("ttl must be a whole number of seconds from 60 to 86400")
    # Two tokens that differ only in `sub` (or only in `client_id`): for tests of per-user state,
    # such as an MCP session that must stay with the user who opened it.
    for field, kinds in (("subject", ("mcp", "user", "id")), ("client_id", ("mcp",))):
        value = body.get(field)
        if value is not None and (kind not in kinds or not isinstance(value, str) or not 0 < len(value) <= 200):
            raise BadRequest(f"{field} must be a non-empty string, for kind {' or '.join(kinds)}")
    return {"kind": kind, "audience": list(audience), "scopes": list(dict.fromkeys(scopes)), "required": required,
            "issuer": issuer or "environment", "ttl": ttl, "subject": body.get("subject"),
            "client_id": body.get("client_id")}


# ---- claims of the valid token ------------------------------------------------------------------
def valid_claims(ctx, env_url: str, req: dict, now: int) -> dict:
    """Claims shaped as the hosted service issues them for `kind`."""
    store = ctx.store
    kind, audience, scopes = req["kind"], req["audience"], req["scopes"]
    times = {"iat": now, "nbf": now, "exp": now + req["ttl"]}
    if kind == "m2m":
        client_id = new_id("m2morg")
        org = next(iter(store.organizations), None)
        claims = {"iss": env_url, "aud": audience, "sub": client_id, "client_id": client_id, "jti": new_id("tkn"),
                  **times, "scopes": scopes}
        if org:
            claims["oid"] = org
        return claims
    user = next(iter(store.users.values()))
    org = user.memberships[0].organization_id if user.memberships else None
    subject = req.get("subject") or user.id
    if kind == "user":
        roles, permissions = store.roles_and_permissions(user, org)
        claims = {"iss": env_url, "aud": audience, "sub": subject, "client_id": audience[0], "jti": new_id("tkn"),
                  "sid": new_id("ses"), "roles": roles, "permissions": permissions, "scope": " ".join(scopes), **times}
    elif kind == "id":
        claims = {"iss": env_url, "aud": audience, "azp": audience[0], "client_id": audience[0], "sub": subject,
                  "sid": new_id("ses"), "amr": [store.password_connection_id], "auth_time": now, "email": user.email,
                  "email_verified": user.email_verified, "name": user.display_name, **times}
    else:  # mcp
        resource = next((a for a in audience if a.startswith("res_")), audience[0])
        iss = f"{env_url}/resources/{resource}" if req["issuer"] == "resource" else env_url
        claims = {"iss": iss, "aud": audience, "sub": subject, "client_id": req.get("client_id") or new_id("m2m"),
                  "jti": new_id("tkn"), "sid": new_id("ses"), "scope": " ".join(scopes), **times}
    if org:
        claims["oid"] = org
    return claims


def without_scope(claims: dict, scope: str) -> dict:
    changed = dict(claims)
    if "scopes" in changed:
        changed["scopes"] = [s for s in changed["scopes"] if s != scope]
    if "scope" in changed:
        changed["scope"] = " ".join(s for s in changed["scope"].split() if s != scope)
    return changed


# ---- the matrix ---------------------------------------------------------------------------------
def build(ctx, env_url: str, req: dict) -> dict:
    issuer = ctx.tokens
    now = int(time.time())
    claims = valid_claims(ctx, env_url, req, now)
    header = {"alg": "RS256", "kid": issuer.kid, "typ": "JWT"}
    sign = lambda c: rs256(issuer.key, header, c)  # noqa: E731
    public_pem = issuer.public_key.public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    audience = req["audience"]
    other_resource = next((r for r in _resource_ids(ctx) if r not in audience), OTHER_RESOURCE)
    other_iss = claims["iss"].replace(env_url, OTHER_ENVIRONMENT, 1)
    ttl = req["ttl"]
    app_client = ctx.store.default_client
    variants = [
        ("aud_other_resource", sign({**claims, "aud": [other_resource]}),
         f"aud names another resource ({other_resource}) of this environment, not {audience[0]}"),
        ("aud_other_api", sign({**claims, "aud": [OTHER_API]}),
         f"aud names another API ({OTHER_API}), not {audience[0]}"),
        ("aud_client_credentials", issuer.client_token(env_url, app_client, list(app_client.scopes)),
         f"this environment's client-credentials token for the app itself (client {app_client.id}), not a "
         f"{req['kind']} token for {audience[0]}"),
        ("iss_other_environment", sign({**claims, "iss": other_iss}),
         f"iss is another Scalekit environment ({other_iss}); signed with this environment's real key"),
        ("forged_signature", rs256(attacker_key(), header, claims),
         "claims unchanged, signed with a key this environment does not publish, under its real kid"),
        ("unknown_kid", rs256(attacker_key(), {**header, "kid": UNKNOWN_KID}, claims),
         f"kid {UNKNOWN_KID} is not in this environment's /keys (signed with an unpublished key)"),
        ("alg_none", segments({"alg": "none", "typ": "JWT"}, claims) + ".",
         "alg none and no signature"),
        ("hs256_public_key", hs256(public_pem, {**header, "alg": "HS256"}, claims),
         "alg HS256 with the environment's public key PEM as the HMAC secret (algorithm confusion)"),
        ("expired", sign({**claims, "iat": now - 3600 - ttl, "nbf": now - 3600 - ttl, "exp": now - 3600}),
         "exp passed an hour ago"),
        ("not_yet_valid", sign({**claims, "nbf": now + 86400, "exp": now + 86400 + ttl}),
         "nbf is a day from now"),
    ]
    if req["required"]:
        variants.append(("missing_scope", sign(without_scope(claims, req["required"])),
                         f"valid, but without the required scope {req['required']}"))
    return {"valid": {"token": sign(claims), "claims": claims},
            "variants": [{"name": n, "token": t, "why": w} for n, t, w in variants]}


def _resource_ids(ctx) -> list[str]:
    return [r["id"] for r in getattr(ctx.store, "resources", None) or [] if isinstance(r, dict) and "id" in r]


# ---- HTTP -----------------------------------------------------------------------------------------
def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=NO_STORE)


async def token_matrix(request: Request) -> Response:
    ctx = request.app.state.ctx
    # Test-only and unauthenticated: refuse what a web page could send (a foreign Origin, a
    # cross-site fetch, or a "simple" request without the JSON content type).
    origin = request.headers.get("origin")
    if origin is not None and origin not in ctx.known_issuers():
        return _error("access_denied", f"cross-origin requests are refused (Origin {origin[:100]})", 403)
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return _error("access_denied", "cross-site requests are refused", 403)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return _error("invalid_request", "send the request as Content-Type: application/json")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return _error("invalid_request", f"the request body is larger than {MAX_BODY} bytes")
    try:
        req = parse(json.loads(body or b"null"))
    except (ValueError, RecursionError):
        return _error("invalid_request", "the request body is not valid JSON")
    except BadRequest as exc:
        return _error("invalid_request", str(exc))
    ctx.store.count("token_matrix")
    env_url = ctx.issuer_for(request.headers.get("host"))  # the environment URL the caller used
    return JSONResponse(build(ctx, env_url, req), headers=NO_STORE)


ROUTES = [Route("/_local/token-matrix", token_matrix, methods=["POST"])]
