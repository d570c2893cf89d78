"""Proof that the snippet harness catches real errors.

pages/good.md holds one correct fence of every kind (inside tabs, admonitions, tilde and
four-backtick fences); pages/broken.md holds one broken fence per case, named by its title.
These tests pass when the harness passes the good ones and fails each broken one for the
expected reason. tests/test_snippets.py never scans this folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, where the harness package lives

from harness import EnvironmentUnavailable, Harness, classify, scan_file  # noqa: E402
from harness.regions import RegionError, regions  # noqa: E402
from harness.scan import parse_info  # noqa: E402

# Stand-ins for the local Scalekit environment: no fence here talks to a server.
FIXTURE_ENV = {
    "SCALEKIT_ENVIRONMENT_URL": "https://fixture-env.scalekit.invalid",
    "SCALEKIT_CLIENT_ID": "skc_fixture_0001",
    "SCALEKIT_CLIENT_SECRET": "fixture-secret-0123456789",
}

GOOD, GOOD_PROBLEMS = scan_file(HERE / "pages" / "good.md", HERE)
BROKEN, BROKEN_PROBLEMS = scan_file(HERE / "pages" / "broken.md", HERE)

# case title -> (stage that must fail it, text the message must contain)
BROKEN_CASES = {
    "case-python-missing-method": (
        "run",
        "AttributeError: type object 'ScalekitClient' has no attribute 'get_authorisation_url'",
    ),
    "case-python-wrong-output": ("output", "#> 2"),
    "case-python-undefined-name": ("lint", "F821"),
    "case-python-prints-secret": ("secret", "SCALEKIT_CLIENT_SECRET"),
    "case-python-hangs": ("timeout", "within 1 s"),
    "case-ts-missing-method": ("compile", "TS2551: Property 'getAuthorisationUrl' does not exist"),
    "case-ts-wrong-output": ("output", "expected: ['expected']"),
    "case-ts-throws": ("exit", "boom at runtime"),
    "case-go-wrong-identifier": ("compile", "GetAuthorisationUrl undefined"),
    "case-go-not-gofmt": ("gofmt", "not gofmt-clean"),
    "case-shell-failing-exit": ("exit", "exited 3, expected 0"),
    "case-shell-timeout": ("timeout", "within 1 s"),
    "case-shell-other-command": ("gate", "runs something other than this repository's scripts"),
    "case-unclassified": ("gate", "```ruby is neither run by the tests"),
    "case-skip-without-reason": ("gate", 'needs a non-empty reason="..."'),
    "case-unbraced": ("gate", "inside braces"),
    "case-unknown-attribute": ("gate", "unknown attribute(s) tset"),
    "case-mirror-drifted": ("mirror", "authorise"),
    "case-mirror-missing-region": ("mirror", "has no region 'logout'"),
    "case-mirror-missing-file": ("mirror", "templates/nowhere/app.py does not exist"),
    "case-json-invalid": ("display", "```json does not parse"),
    "case-validating-call-without-attribute": ("gate", "calls validate_token, which validates tokens, but has no validates="),
    "case-ts-validating-call-without-attribute": ("gate", "calls jwtVerify, which validates tokens"),
    "case-validates-undefined-function": ("gate", "this fence does not define a function verify_token"),
    "case-accepts-bad-kind": ("gate", "must start with a token kind: mcp, user, m2m, id"),
    "case-accepts-mcp-without-aud": ("gate", "mcp tokens need aud=..."),
    "case-validates-without-accepts": ("gate", 'validates="..." and accepts="..." go together'),
    "case-go-library-validates": ("gate", "must be a whole program"),
}


def fixture_env():
    return FIXTURE_ENV


@pytest.fixture(scope="module")
def fixture_harness():
    h = Harness(HERE, GOOD + BROKEN)
    yield h
    h.close()


def by_title(title: str):
    (fence,) = [f for f in BROKEN if f.attrs.get("title") == title]
    return fence


def test_scanner_finds_fences_in_tabs_admonitions_tildes_and_long_fences():
    found = [(f.lang, f.marker, f.indent) for f in GOOD]
    assert found[:3] == [("python", "```", "    "), ("ts", "```", "    "), ("go", "```", "    ")], "content tabs"
    assert ("py", "```", "    ") in found, "admonition"
    assert ("json", "```", "    ") in found, "collapsible admonition"
    assert ("python", "~~~", "") in found, "tilde fence"
    long_fence = next(f for f in GOOD if f.marker == "````")
    assert "```python\nthis is not run\n```\n" in long_fence.body, "a fence inside a 4-backtick fence is body"
    assert not any("this is not run" in f.body and f.marker == "```" for f in GOOD)
    assert len(GOOD) == 22
    assert not GOOD_PROBLEMS and not BROKEN_PROBLEMS


def test_scanner_dedents_tab_content_and_keeps_line_numbers():
    first = GOOD[0]
    text = (HERE / "pages" / "good.md").read_text().splitlines()
    assert text[first.line - 1].strip() == '```python {title="authorize.py"}'
    assert first.body.startswith("import os\n\nfrom scalekit import")
    assert text[first.end_line - 1].strip() == "```"


def test_info_strings_parse_in_every_form():
    assert parse_info('python {title="a.py" test="skip" reason="no server"}') == (
        "python",
        {"title": "a.py", "test": "skip", "reason": "no server"},
        frozenset({"title", "test", "reason"}),
    )
    assert parse_info('{ .ts title="b.ts" }')[:2] == ("ts", {"title": "b.ts"})
    assert parse_info('Python title="c.py"') == ("python", {"title": "c.py"}, frozenset())
    assert parse_info("")[0] == ""


def test_scan_problems_are_reported():
    from harness import scan_file as scan

    _, problems = scan(HERE / "pages" / "unclosed.md", HERE)
    messages = [str(p) for p in problems]
    assert any("pages/unclosed.md:3: include directive" in m for m in messages), messages
    assert any("pages/unclosed.md:5: fence ```python is never closed" in m for m in messages), messages


@pytest.mark.parametrize("fence", GOOD, ids=[f"{f.lang}@{f.line}" for f in GOOD])
def test_good_fence_passes(fixture_harness, fence):
    result = fixture_harness.check(fence, fixture_env)
    assert result.ok, result.message
    if fence.attrs.get("test") == "skip":
        assert result.outcome == "skipped" and "fixture: a skip with a reason" in result.message


@pytest.mark.parametrize("title", sorted(BROKEN_CASES))
def test_broken_fence_fails_for_the_right_reason(fixture_harness, title):
    stage, text = BROKEN_CASES[title]
    fence = by_title(title)
    result = fixture_harness.check(fence, fixture_env)
    assert result.outcome == "failed", f"{title} was not caught: {result}"
    assert (result.stage, text in result.message) == (stage, True), result.message
    assert "pages/broken.md:" in result.message


def test_failures_name_the_markdown_line(fixture_harness):
    fence = by_title("case-python-missing-method")
    result = fixture_harness.check(fence, fixture_env)
    assert f"pages/broken.md:{fence.line + 3}: AttributeError" in result.message
    fence = by_title("case-ts-missing-method")
    result = fixture_harness.check(fence, fixture_env)
    assert f"pages/broken.md:{fence.line + 4}:" in result.message
    fence = by_title("case-go-wrong-identifier")
    result = fixture_harness.check(fence, fixture_env)
    assert f"pages/broken.md:{fence.line + 7}:" in result.message


def test_every_broken_fence_is_a_case():
    titled = {f.attrs.get("title") for f in BROKEN if f.attrs.get("title", "").startswith("case-")}
    assert titled == set(BROKEN_CASES)


def test_fence_without_language_fails_the_gate(fixture_harness):
    (fence,) = [f for f in BROKEN if not f.lang and "title" not in f.attrs]
    result = fixture_harness.check(fence, fixture_env)
    assert (result.outcome, result.stage) == ("failed", "gate")
    assert "has no language" in result.message


def test_runnable_fence_without_environment_fails_clearly(fixture_harness):
    def missing():
        raise EnvironmentUnavailable("fixture 'local_scalekit' is not defined")

    python_fence = GOOD[0]
    result = fixture_harness.check(python_fence, missing)
    assert (result.outcome, result.stage) == ("failed", "environment")
    assert "local_scalekit" in result.message
    # Display fences and mirrors never need the environment.
    mirror = next(f for f in GOOD if "mirror" in f.attrs)
    assert fixture_harness.check(mirror, missing).ok


def test_each_good_fence_lands_in_the_expected_class():
    kinds = [classify(f).kind for f in GOOD]
    assert kinds.count("python") == 3 and kinds.count("ts") == 2 and kinds.count("go") == 2
    assert kinds.count("shell") == 3 and kinds.count("mirror") == 4 and kinds.count("skip") == 1
    assert kinds.count("display") == 7


def test_regions_exclude_markers_and_reject_bad_markup():
    text = "a\n# region r\n  x\n  # region inner\n  y\n  # endregion inner\n# endregion r\n"
    assert regions(text) == {"r": "x\ny\n", "inner": "y\n"}
    with pytest.raises(RegionError, match="never closed"):
        regions("// region open\nx\n")
    with pytest.raises(RegionError, match="defined twice"):
        regions("# region a\n# endregion a\n# region a\n# endregion a\n")


def test_update_examples_writes_the_output_lines(tmp_path):
    page = tmp_path / "page.md"
    page.write_text('# Page\n\n=== "Python"\n\n    ```python\n    print(6 * 7)\n\n    print("a")\n    ```\n')
    fences, _ = scan_file(page, tmp_path)
    h = Harness(tmp_path, fences, update_examples=True)
    try:
        assert h.check(fences[0], fixture_env).ok
        assert h.write_updates() == ["page.md:5"]
    finally:
        h.close()
    assert (
        page.read_text()
        == '# Page\n\n=== "Python"\n\n    ```python\n    print(6 * 7)\n    #> 42\n\n    print("a")\n    #> a\n    ```\n'
    )
