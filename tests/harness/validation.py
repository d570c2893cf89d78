"""Fences that validate tokens: the `validates` / `accepts` attributes, the completeness gate, and
the judgement of a validator's answers to the token matrix.

    ```python {validates="verify_mcp_token" accepts="mcp aud=res_70000000000004001 requires=todo:read"}

`validates` names a function the fence defines: token in, the token's claims out; it refuses a
token by raising (or returning an error, in Go) or by returning nothing. `accepts` says which
valid token it must accept: a kind (`mcp`, `user`, `m2m`, `id`) and optional `aud=` (comma-separated;
`user` and `id` default to the environment's SCALEKIT_CLIENT_ID), `scope=` (comma-separated),
`requires=` (a scope the function must insist on; adds the `missing_scope` variant) and `iss=`
(`resource` or `environment`, mcp only). The harness fetches the local environment's token matrix
for that spec (POST /_local/token-matrix, once per spec per run) and runs the function on the valid
token and on every variant.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .scan import Fence

KINDS = ("mcp", "user", "m2m", "id")
ACCEPTS_KEYS = ("aud", "scope", "requires", "iss")
# Calls that check a token's signature or claims. A fence that makes one must carry `validates`.
VALIDATING_CALL = re.compile(
    r"\b(?:validate_token|validate_access_token(?:_and_get_claims)?|validateToken|validateAccessToken"
    r"|ValidateAccessToken|ValidateTokenWithOptions|ValidateToken|GetAccessTokenClaims|get_idp_initiated_login_claims"
    r"|getIdpInitiatedLoginClaims|GetIdpInitiatedLoginClaims|jwtVerify|PyJWKClient|createRemoteJWKSet"
    r"|jwt\.decode|jwt\.verify|jwt\.Parse|jose\.ParseSigned|ParseSigned)\s*[\[(]")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Spec:
    """What the valid token looks like; `audience` None means the environment's client id."""
    kind: str
    audience: tuple[str, ...] | None
    scopes: tuple[str, ...]
    required: str | None
    issuer: str | None

    def request(self, client_id: str) -> dict:
        body = {"kind": self.kind, "audience": list(self.audience or (client_id,)), "scopes": list(self.scopes),
                # The harness runs for minutes; the valid token must outlive the run.
                "ttl": 3600}
        if self.required:
            body["required_scope"] = self.required
        if self.issuer:
            body["issuer"] = self.issuer
        return body


def parse_accepts(text: str) -> Spec:
    """`mcp aud=res_1,https://x/mcp scope=todo:read requires=todo:write iss=resource` -> Spec.
    Raises ValueError with a message for the gate."""
    words = text.split()
    if not words or words[0] not in KINDS:
        raise ValueError(f'accepts="{text}" must start with a token kind: {", ".join(KINDS)}')
    kind, values = words[0], {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or key not in ACCEPTS_KEYS or not value:
            raise ValueError(f'accepts="{text}": {word!r} is not one of {", ".join(k + "=..." for k in ACCEPTS_KEYS)}')
        if key in values:
            raise ValueError(f'accepts="{text}": {key}= is given twice')
        values[key] = value
    audience = tuple(values["aud"].split(",")) if "aud" in values else None
    if audience is None and kind in ("mcp", "m2m"):
        raise ValueError(f'accepts="{text}": {kind} tokens need aud=... (the resource id or API audience)')
    scopes = list(values["scope"].split(",")) if "scope" in values else []
    required = values.get("requires")
    if required and required not in scopes:
        scopes.append(required)
    if kind == "id" and scopes:
        raise ValueError(f'accepts="{text}": ID tokens carry no scopes')
    issuer = values.get("iss")
    if issuer is not None and (kind != "mcp" or issuer not in ("resource", "environment")):
        raise ValueError(f'accepts="{text}": iss= is resource or environment, and only for mcp')
    return Spec(kind, audience, tuple(scopes), required, issuer)


def defines(fence: Fence, name: str) -> bool:
    """Whether the fence's body defines the function `name` (Python def, TS function/const, Go func)."""
    n = re.escape(name)
    patterns = {
        "python": rf"^\s*(?:async\s+)?def\s+{n}\s*\(",
        "ts": rf"(?:^|\s)(?:async\s+)?function\s+{n}\s*[(<]|\b(?:const|let)\s+{n}\s*=",
        "go": rf"^func\s+{n}\s*\(",
    }
    lang = "python" if fence.lang in ("python", "py") else "go" if fence.lang == "go" else "ts"
    return re.search(patterns[lang], fence.body, re.M) is not None


def gate_problem(fence: Fence, kind: str, is_go_program: bool) -> str | None:
    """Why the gate fails this fence's validation attributes (or their absence), or None."""
    name, accepts = fence.attrs.get("validates"), fence.attrs.get("accepts")
    if name is None and accepts is None:
        if kind in ("python", "ts", "go"):
            call = VALIDATING_CALL.search(fence.body)
            if call:
                api = call.group(0).rstrip("([").strip()
                return (f"calls {api}, which validates tokens, but has no validates=\"<function>\" accepts=\"<kind> ...\" "
                        "attribute: the harness must run that function against the token matrix "
                        "(tests/harness/README.md, \"Fences that validate tokens\")")
        return None
    if name is None or accepts is None:
        return 'validates="..." and accepts="..." go together'
    if kind not in ("python", "ts", "go"):
        return "validates/accepts are only for Python, TS/JS and Go fences that run"
    if not _IDENTIFIER.match(name):
        return f'validates="{name}" must name a function'
    if not defines(fence, name):
        return f'validates="{name}": this fence does not define a function {name}'
    if kind == "go" and not is_go_program:
        return "a Go fence with validates= must be a whole program (package main with func main)"
    try:
        parse_accepts(accepts)
    except ValueError as exc:
        return str(exc)
    return None


def judge(fence: Fence, answers: list[dict], matrix) -> list[str]:
    """Problems with a validator's answers: [{name, accepted, sub, exp, error}] for "valid" and
    each variant of `matrix` (scalekit_checks.token_matrix.Matrix)."""
    by_name = {a.get("name"): a for a in answers}
    where = f"{fence.rel}:{fence.line}"
    fn = fence.attrs["validates"]
    found = []
    valid = by_name.get("valid")
    if valid is None:
        found.append(f"{where}: {fn} was not run on the valid token")
    elif not valid.get("accepted"):
        found.append(f"{where}: {fn} refused the valid token ({valid.get('error') or 'returned nothing'}); "
                     f"it must accept a {fence.attrs['accepts']!r} token")
    elif valid.get("sub") != matrix.claims["sub"] or _number(valid.get("exp")) != matrix.claims["exp"]:
        found.append(f"{where}: {fn} accepted the valid token but did not return its claims (sub and exp)")
    for variant in matrix:
        answer = by_name.get(variant.name)
        if answer is None:
            found.append(f"{where}: {fn} was not run on variant {variant.name}")
        elif answer.get("accepted"):
            found.append(f"{where}: {fn} accepted variant {variant.name}: {variant.why}")
    return found


def _number(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
