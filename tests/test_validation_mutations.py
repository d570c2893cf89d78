"""Weakening any page's token validator turns the test command red, naming the page and the variant.

Every fence on the skill's pages that carries `validates=` is copied with one check weakened at a
time (no audience, any issuer, no signature check, no scope check, a wrong audience), and each copy
must fail the snippet harness at the `matrix` stage with a message that names the page, the fence's
line and the token that got through (or the valid one it refused). tests/harness_fixtures/ holds
hand-written weakened validators; this file applies the same weakenings to the real pages, so a new
validating fence is covered without writing its weakened copies by hand.
"""
from __future__ import annotations

import dataclasses
import re

import pytest

from harness import REPO, Harness, markdown_files, scan_tree
from harness.validation import parse_accepts

FENCES = [f for f in scan_tree(REPO, markdown_files(REPO))[0] if "validates" in f.attrs]
LANG = {"python": "python", "py": "python", "go": "go"}  # everything else that runs is TS/JS

# Python and TS fences replace the SDK call by a decode without any check; Go fences call a helper
# that decodes the payload (its imports are added in gofmt order, after "context").
PY_UNVERIFIED = 'def _unverified(token, options=None):\n    return __import__("jwt").decode(token, options={"verify_signature": False})\n\n\n'
TS_UNVERIFIED = ('\nasync function __unverified(token: string, _options?: unknown): Promise<JWTPayload> {\n'
                 '  return (await import("jose")).decodeJwt(token);\n}\n')
GO_UNVERIFIED = '''
func unverifiedClaims(token string) (scalekit.Claims, error) {
	start := 0
	for start < len(token) && token[start] != '.' {
		start++
	}
	end := start + 1
	for end < len(token) && token[end] != '.' {
		end++
	}
	claims := scalekit.Claims{}
	payload, err := base64.RawURLEncoding.DecodeString(token[min(start+1, len(token)):end])
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	return claims, err
}
'''


def _disable(pattern: str) -> tuple[str, str]:
    """Regex and replacement that put `false && ` in front of a Go or TS condition."""
    return pattern, r"\1false && "


# weakening -> language -> [(regex, replacement)]; a weakening applies when every regex matches.
WEAKENINGS = {
    "no-audience": {
        "python": [(r",\s*audience=\[[^\]]*\]", "")],
        "ts": [(r"\s*\baudience: \[[^\]]*\],?", "")],
        "go": [_disable(r'(if aud, _ := claims\["aud"\]\.\(\[\]any\); )')],
    },
    "any-issuer": {
        "python": [(r"issuer=(?:\[[^\]]*\]|[A-Za-z_]+),\s*", "")],
        "ts": [(r"\s*\bissuer: envUrl,?|(if \()(?=claims\.iss !==)", lambda m: "" if m.group(1) is None else "if (false && ")],
        "go": [_disable(r'(if iss, _ := claims\["iss"\]\.\(string\); )')],
    },
    "no-signature": {
        "python": [(r"(?m)^(?=ENV_URL = )", PY_UNVERIFIED), (r"scalekit\.validate_token\(", "_unverified(")],
        "ts": [(r"scalekit\.validateToken<JWTPayload>\(", "__unverified("), (r"\Z", TS_UNVERIFIED)],
        "go": [(r'\t"context"\n', '\t"context"\n\t"encoding/base64"\n\t"encoding/json"\n'),
               (r"client\.ValidateToken\(ctx, token\)", "unverifiedClaims(token)"), (r"\Z", GO_UNVERIFIED)],
    },
    "no-scope-check": {
        "python": [(r",\s*required_scopes=\[[^\]]*\]|(if )(?=scope not in)", lambda m: "" if m.group(1) is None else "if False and ")],
        "ts": [(r",?\s*\brequiredScopes: \[[^\]]*\],?|(if \()(?=!String\(claims\.scope)",
                lambda m: "" if m.group(1) is None else "if (false && ")],
        "go": [_disable(r'(if scopes?, _ := claims\["scopes?"\]\.\([^)]*\); )')],
    },
}
EXPECTED = {"no-audience": "accepted variant aud_other_api", "any-issuer": "accepted variant iss_other_environment",
            "no-signature": "accepted variant forged_signature", "no-scope-check": "accepted variant missing_scope",
            "wrong-audience": "refused the valid token"}
# The expression each language uses for the app's own client id (user and id tokens).
CLIENT_ID_AUDIENCE = [(r"audience=\[CLIENT_ID\]", 'audience=["skc_another_app"]'),
                      (r"audience: \[clientId\]", 'audience: ["skc_another_app"]'),
                      (r"any\(clientID\)", 'any("skc_another_app")')]


def weaken(fence, weakening: str) -> str | None:
    """The fence's body with one check weakened, or None when the weakening does not apply."""
    body, lang = fence.body, LANG.get(fence.lang, "ts")
    spec = parse_accepts(fence.attrs["accepts"])
    if weakening == "wrong-audience":
        if spec.audience:
            target = spec.audience[0]
            return body.replace(f'"{target}"', f'"{target}-other"') if f'"{target}"' in body else None
        for pattern, replacement in CLIENT_ID_AUDIENCE:
            if re.search(pattern, body):
                return re.sub(pattern, replacement, body)
        return None
    if weakening == "no-scope-check" and not spec.required:
        return None
    for pattern, replacement in WEAKENINGS[weakening][lang]:
        body, count = re.subn(pattern, replacement, body)
        if not count:
            return None
    return body


CASES = [(f, w, weaken(f, w)) for f in FENCES for w in EXPECTED]


def test_every_validating_fence_can_be_weakened_every_way():
    """The regexes above still fit the pages: each weakening applies to each validating fence
    (no-scope-check only where accepts= has requires=)."""
    missing = [f"{f.id} {w}" for f, w, body in CASES
               if body is None and not (w == "no-scope-check" and not parse_accepts(f.attrs["accepts"]).required)]
    assert FENCES and not missing, f"weakenings that no longer apply (update WEAKENINGS): {missing}"


@pytest.fixture(scope="module")
def weakened_harness():
    """One harness for every weakened copy (one tsc run, one go build). Each copy keeps its page
    and line; the weakening is added to its path so that copies of one fence stay apart."""
    copies = [dataclasses.replace(f, rel=f"{f.rel}[{w}]", body=body) for f, w, body in CASES if body is not None]
    h = Harness(REPO, copies)
    yield h, {(c.rel.split("[")[0], c.line, c.rel.split("[")[1].rstrip("]")): c for c in copies}
    h.close()


@pytest.mark.slow
@pytest.mark.parametrize("fence, weakening", [pytest.param(f, w, id=f"{f.id}-{w}") for f, w, b in CASES if b is not None])
def test_weakened_page_validator_fails_naming_page_and_variant(weakened_harness, local_scalekit, fence, weakening):
    harness, copies = weakened_harness
    copy = copies[(fence.rel, fence.line, weakening)]
    result = harness.check(copy, local_scalekit.env_vars)
    assert (result.outcome, result.stage) == ("failed", "matrix"), result.message
    assert f"{fence.rel}[{weakening}]:{fence.line}: {fence.attrs['validates']} " in result.message, result.message
    assert EXPECTED[weakening] in result.message, result.message
