"""Fetch the local environment's token matrix and run a token validator against it.

The matrix (POST /_local/token-matrix, reference/local-environment.md) is one valid token and
single-fault variants (wrong audience, wrong issuer, forged, expired, ...). Code that validates
tokens must accept the valid one, returning its claims, and refuse every variant::

    from scalekit_checks.token_matrix import fetch_matrix, problems

    matrix = fetch_matrix(env_url, "mcp", ["res_70000000000004001"], ["todo:read"], required_scope="todo:read")
    assert not problems(verify_mcp_token, matrix)

Standard library only, so tests of any suite (and users' own) can import it.
"""
from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VARIANTS = ("aud_other_resource", "aud_other_api", "aud_client_credentials", "iss_other_environment",
            "forged_signature", "unknown_kid", "alg_none", "hs256_public_key", "expired", "not_yet_valid",
            "missing_scope")


class MatrixError(Exception):
    """The matrix could not be fetched (environment down, bad request); str() says why."""


@dataclass(frozen=True)
class Variant:
    name: str
    token: str
    why: str


@dataclass(frozen=True)
class Matrix:
    token: str                   # the valid token
    claims: dict[str, Any]       # its claims
    variants: tuple[Variant, ...]

    def __iter__(self) -> Iterator[Variant]:
        return iter(self.variants)

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)


def fetch_matrix(env_url: str, kind: str, audience: Sequence[str], scopes: Sequence[str] = (), *,
                 required_scope: str | None = None, issuer: str | None = None, ttl: int | None = None,
                 subject: str | None = None, client_id: str | None = None,
                 ca_bundle: str | None = None, timeout: float = 10.0) -> Matrix:
    """POST /_local/token-matrix on the environment at env_url. ca_bundle defaults to
    REQUESTS_CA_BUNDLE or SSL_CERT_FILE (what the local environment's env_vars() set)."""
    body: dict[str, Any] = {"kind": kind, "audience": list(audience), "scopes": list(scopes)}
    for key, value in (("required_scope", required_scope), ("issuer", issuer), ("ttl", ttl), ("subject", subject),
                       ("client_id", client_id)):
        if value is not None:
            body[key] = value
    request = urllib.request.Request(f"{env_url.rstrip('/')}/_local/token-matrix", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    context = None
    if env_url.startswith("https://"):
        cafile = ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
        context = ssl.create_default_context(cafile=cafile)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            doc = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        raise MatrixError(f"token matrix: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise MatrixError(f"token matrix: {env_url} did not answer: {exc}") from None
    variants = tuple(Variant(v["name"], v["token"], v["why"]) for v in doc["variants"])
    return Matrix(doc["valid"]["token"], doc["valid"]["claims"], variants)


def claims_match(returned: Any, claims: Mapping[str, Any]) -> bool:
    """True when `returned` carries the valid token's subject and expiry (a dict or an object)."""
    def get(key: str):
        if isinstance(returned, Mapping):
            return returned.get(key)
        return getattr(returned, key, None)

    return get("sub") == claims["sub"] and get("exp") == claims["exp"]


def problems(validate: Callable[[str], Any], matrix: Matrix) -> list[str]:
    """What is wrong with `validate` (token -> claims; refuses by raising or returning a falsy
    value): the valid token refused or its claims not returned, and every variant it accepted."""
    found = []
    try:
        returned = validate(matrix.token)
    except Exception as exc:  # noqa: BLE001 - any exception is a refusal
        found.append(f"valid: the valid token was refused ({type(exc).__name__}: {exc})")
    else:
        if not returned:
            found.append(f"valid: the valid token was refused (returned {returned!r})")
        elif not claims_match(returned, matrix.claims):
            found.append("valid: accepted, but the token's claims (sub, exp) did not come back")
    for variant in matrix:
        try:
            accepted = validate(variant.token)
        except Exception:  # noqa: BLE001 - refused, as it should be
            continue
        if accepted:
            found.append(f"{variant.name}: accepted ({variant.why})")
    return found
