"""Custom access-token claims, as Dashboard > Authentication > Token Claims configures them.

Scalekit documents them in authenticate/fsa/session-token-claims.mdx: a claim key and an
expression over `user` or `organization` (e.g. `organization.metadata.plan`), with `??` for a
fallback and `?.` below a field that may be missing. The resolved value is added to every user
access token at login and refresh; a claim whose expression resolves to nothing is left out; the
default claims cannot be overridden. Only that subset of expr-lang is emulated here: field paths,
`??` and string literals.

    parse("plan=organization.metadata.plan ?? \"free\"") -> TokenClaim
    resolve(claims, user, organization) -> {key: value}
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

RESERVED = frozenset({"sub", "iss", "aud", "exp", "iat", "nbf", "jti", "oid", "sid", "xoid", "xuid", "roles",
                      "permissions"})
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PATH = re.compile(r"^(user|organization)((?:\??\.[A-Za-z_][A-Za-z0-9_]*)+)$")
_MISSING = object()


class TokenClaimError(ValueError):
    """A claim definition that cannot be used; str() names the problem."""


@dataclass(frozen=True)
class TokenClaim:
    key: str
    expression: str
    alternatives: tuple[tuple[str, tuple[str, ...]] | str, ...]  # (root, fields) paths or string literals


def parse(spec: str) -> TokenClaim:
    """`KEY=EXPRESSION`, e.g. `plan=organization.metadata.plan ?? "free"`."""
    key, sep, expression = spec.partition("=")
    key, expression = key.strip(), expression.strip()
    if not sep or not key or not expression:
        raise TokenClaimError(f"{spec!r}: write KEY=EXPRESSION, e.g. plan=organization.metadata.plan")
    return make(key, expression)


def make(key: str, expression: str) -> TokenClaim:
    if not _KEY.match(key):
        raise TokenClaimError(f"claim key {key!r}: use letters, digits and _ (at most 64)")
    if key in RESERVED:
        raise TokenClaimError(f"claim key {key!r} is set by Scalekit on every token and cannot be overridden")
    alternatives: list = []
    for part in (p.strip() for p in expression.split("??")):
        if len(part) >= 2 and part[0] == part[-1] == '"':
            try:
                alternatives.append(json.loads(part))
            except json.JSONDecodeError:
                raise TokenClaimError(f"claim {key}: {part} is not a valid string literal") from None
            continue
        match = _PATH.match(part)
        if not match:
            raise TokenClaimError(f"claim {key}: {part!r} is neither a field path starting with user. or "
                                  "organization. nor a \"string\"")
        fields = tuple(f for f in re.split(r"\??\.", match.group(2)) if f)
        alternatives.append((match.group(1), fields))
    return TokenClaim(key, expression, tuple(alternatives))


def user_fields(user, organization, membership) -> dict[str, Any]:
    """The `user` object an expression reads (session-token-claims.mdx, "User fields")."""
    fields: dict[str, Any] = {
        "id": user.id, "email": user.email, "email_verified": user.email_verified, "name": user.display_name,
        "given_name": user.given_name or None, "family_name": user.family_name or None,
        "external_id": user.external_id, "metadata": dict(user.metadata),
    }
    if membership is not None:
        fields["current_membership"] = {
            "organization_id": membership.organization_id,
            "organization_name": organization.display_name if organization else None,
            "roles": list(membership.roles), "status": "active", "metadata": dict(membership.metadata),
        }
    return fields


def organization_fields(organization) -> dict[str, Any] | None:
    if organization is None:
        return None
    return {"id": organization.id, "name": organization.display_name, "external_id": organization.external_id,
            "metadata": dict(organization.metadata)}


def _lookup(root: Any, fields: tuple[str, ...]) -> Any:
    value = root
    for name in fields:
        if not isinstance(value, dict) or value.get(name) is None:
            return _MISSING
        value = value[name]
    return value


def resolve(claims: list[TokenClaim], user, organization, membership) -> dict[str, Any]:
    """The custom claims of one token; claims that resolve to nothing are left out."""
    roots = {"user": user_fields(user, organization, membership), "organization": organization_fields(organization)}
    found: dict[str, Any] = {}
    for claim in claims:
        for alternative in claim.alternatives:
            value = alternative if isinstance(alternative, str) else _lookup(roots[alternative[0]], alternative[1])
            if value is not _MISSING:
                found[claim.key] = value
                break
    return found
