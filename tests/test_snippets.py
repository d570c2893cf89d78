"""Every fenced block in every Markdown file of the repository is run, compared or allowed.

One test per fence (id `file.md:line-lang`), driven by the harness's single scanner: Python
runs with its `#>` output checked, TS/JS is type-checked then run, Go is gofmt'd, vetted,
built and run, shell lines that call this repo's scripts run, mirrors must equal their
template region, display-only languages must parse, and anything else fails the gate.
See tests/harness/README.md for the fence attributes.
"""

from __future__ import annotations

from collections import Counter

import pytest

from harness import REPO, EnvironmentUnavailable, Harness, classify, markdown_files, scan_tree

FILES = markdown_files(REPO)
FENCES, SCAN_PROBLEMS = scan_tree(REPO, FILES)
# Skips are an escape hatch, not a habit: raising this needs a reason in review.
MAX_SKIPS = 5


@pytest.fixture(scope="session")
def snippet_harness(pytestconfig):
    # `pytest tests/test_snippets.py --update-examples` writes Python fences' `#>` lines.
    h = Harness(REPO, FENCES, update_examples=pytestconfig.getoption("update_examples"))
    yield h
    h.write_updates()
    h.close()


def scalekit_environment(request):
    """The local Scalekit environment's variables, requested only by fences that run."""

    def provide():
        try:
            local = request.getfixturevalue("local_scalekit")
        except pytest.FixtureLookupError:
            raise EnvironmentUnavailable(
                "the session fixture `local_scalekit` (tests/conftest.py, scripts/scalekit_local/) is not defined"
            ) from None
        return local.env_vars()

    return provide


def fence_param(fence):
    # Shell fences start whole scripts (each imports the SDK and often an embedded environment);
    # tests/scripts covers the same scripts, so the inner loop (`-m "not slow"`) leaves them out.
    slow = classify(fence).kind == "shell"
    return pytest.param(fence, id=f"{fence.id}-{fence.lang or 'none'}", marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("fence", [fence_param(f) for f in FENCES])
def test_fence(fence, snippet_harness, request):
    result = snippet_harness.check(fence, scalekit_environment(request))
    if result.outcome == "skipped":
        pytest.skip(result.message)
    if result.outcome == "failed":
        pytest.fail(result.message, pytrace=False)


def test_markdown_scans_cleanly():
    assert not SCAN_PROBLEMS, "\n".join(map(str, SCAN_PROBLEMS))


def test_scan_covers_the_skill_and_leaves_out_fixtures():
    rel = {p.relative_to(REPO).as_posix() for p in FILES}
    assert {"SKILL.md", "README.md"} <= rel
    for folder in ("full-stack-auth", "modular-sso", "mcp-auth", "reference"):
        on_disk = {p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*.md")}
        assert on_disk <= rel, f"{folder}: not scanned: {sorted(on_disk - rel)}"
    templates = {p.relative_to(REPO).as_posix() for p in (REPO / "templates").glob("*/README.md")}
    assert templates <= rel
    assert not any(r.startswith(("tests/harness_fixtures/", "docs/", "node_modules/", ".venv/")) for r in rel)


def test_skips_are_few_and_have_reasons():
    skipped = [f for f in FENCES if classify(f).kind == "skip"]
    listing = "\n".join(f"  {f.id}: {f.attrs['reason']}" for f in skipped)
    by_file = Counter(f.rel for f in skipped)
    assert len(skipped) <= MAX_SKIPS, f"{len(skipped)} skipped fences (at most {MAX_SKIPS}):\n{listing}\n{by_file}"
