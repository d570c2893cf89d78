"""Proof that the token-matrix check catches weakened validators (issue #8).

pages/validators.md holds one correct MCP-token validator per language (`*-good`) and copies of it
with one check weakened. Each weakened copy must make the harness fail at the `matrix` stage with a
message naming the page, the fence's line and the variant that got through (or the valid token it
refused). These fences run against the real local Scalekit environment (`local_scalekit`).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, where the harness package lives

from harness import Harness, classify, scan_file  # noqa: E402

FENCES, PROBLEMS = scan_file(HERE / "pages" / "validators.md", HERE)
BY_TITLE = {f.attrs["title"]: f for f in FENCES}

# title -> what the failure message must say got through
WEAKENED = {
    "py-no-audience": "accepted variant aud_other_resource",
    "py-any-issuer": "accepted variant iss_other_environment",
    "py-no-signature": "accepted variant forged_signature",
    "py-no-scope-check": "accepted variant missing_scope",
    "py-wrong-audience": "refused the valid token (InvalidAudienceError",
    "py-sdk-scopes-on-mcp-token": "refused the valid token (ScalekitValidateTokenFailureException: Token missing required scopes",
    "ts-no-audience": "accepted variant aud_other_resource",
    "ts-any-issuer": "accepted variant iss_other_environment",
    "ts-no-signature": "accepted variant forged_signature",
    "ts-no-scope-check": "accepted variant missing_scope",
    "ts-wrong-audience": "refused the valid token (ScalekitValidateTokenFailureException",
    "go-no-audience": "accepted variant aud_other_api",
    "go-any-issuer": "accepted variant iss_other_environment",
    "go-no-signature": "accepted variant alg_none",
    "go-no-scope-check": "accepted variant missing_scope",
    "go-no-nbf-check": "accepted variant not_yet_valid",
    "go-wrong-audience": "refused the valid token (none of the expected audiences",
}
GOOD = ["py-good", "ts-good", "go-good"]


def case(title: str):
    # TS and Go cases compile and start processes; the inner loop (-m "not slow") keeps Python's.
    return pytest.param(title, id=title, marks=[] if title.startswith("py-") else [pytest.mark.slow])


@pytest.fixture(scope="module")
def harness():
    h = Harness(HERE, FENCES)
    yield h
    h.close()


@pytest.fixture(scope="module")
def environment(local_scalekit):
    return local_scalekit.env_vars


def test_every_fence_is_a_case():
    assert not PROBLEMS
    assert set(BY_TITLE) == set(WEAKENED) | set(GOOD)
    assert all(classify(f).kind in ("python", "ts", "go") for f in FENCES), [classify(f) for f in FENCES]


@pytest.mark.parametrize("title", [case(t) for t in GOOD])
def test_correct_validator_passes_the_matrix(harness, environment, title):
    result = harness.check(BY_TITLE[title], environment)
    assert (result.outcome, result.stage) == ("passed", "matrix"), result.message
    assert "refused 11 variants" in result.message


@pytest.mark.parametrize("title", [case(t) for t in sorted(WEAKENED)])
def test_weakened_validator_fails_naming_page_line_and_variant(harness, environment, title):
    fence = BY_TITLE[title]
    result = harness.check(fence, environment)
    assert (result.outcome, result.stage) == ("failed", "matrix"), result.message
    assert f"pages/validators.md:{fence.line}: " in result.message
    assert WEAKENED[title] in result.message, result.message
