"""Where `--local` keeps the local environment's CA and keys: test_connection.py and test_auth_flow.py
use a temporary folder that is gone when the run ends (nothing lands in the skill folder), or the
folder --data-dir names, kept for the next run. local_scalekit.py's --help names its real default."""
from __future__ import annotations

from pathlib import Path

import pytest
from script_helpers import REPO, assert_failed, base_env, result, run_many, run_script

KEY_FILES = {"ca.pem", "ca-bundle.pem", "signing-key.pem", "tls-cert.pem", "tls-key.pem"}


def local_data_dir(run) -> Path:
    check = next(c for c in run.doc["checks"] if c["name"] == "local environment")
    return Path(check["data"]["data_dir"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("data-dir")
    temp = root / "tmp"  # TMPDIR of the default runs: what they leave there is visible
    temp.mkdir()
    kept = root / "kept"
    jobs = {}
    for script in ("test_connection.py", "test_auth_flow.py"):
        jobs[f"{script} default"] = (script, ("--local", "--json"), base_env(TMPDIR=str(temp)), root)
        jobs[f"{script} without --local"] = (script, ("--data-dir", str(kept)), base_env(), root)
    jobs["test_connection.py kept"] = ("test_connection.py", ("--local", "--json", "--data-dir", str(kept)),
                                       base_env(), root)
    return run_many(jobs), temp, kept


@pytest.mark.parametrize("script", ["test_connection.py", "test_auth_flow.py"])
def test_default_is_a_temporary_folder_removed_at_the_end(runs, script):
    results, temp, _ = runs
    run = result(results, f"{script} default")
    assert run.code == 0, run
    used = local_data_dir(run)
    assert used.parent == temp and used.name.startswith("scalekit-local-"), used
    assert not used.exists(), f"{used} is left behind"
    assert REPO not in used.parents


def test_data_dir_is_used_and_kept_for_the_next_run(runs, tmp_path):
    results, _, kept = runs
    first = result(results, "test_connection.py kept")
    assert first.code == 0, first
    assert local_data_dir(first) == kept.resolve()
    assert KEY_FILES <= {p.name for p in kept.iterdir()}
    ca = (kept / "ca.pem").read_bytes()
    again = run_script("test_auth_flow.py", "--local", "--json", "--data-dir", str(kept), env=base_env(), cwd=tmp_path)
    assert again.code == 0, again
    assert (kept / "ca.pem").read_bytes() == ca, "the second run must reuse the folder's CA"


@pytest.mark.parametrize("script", ["test_connection.py", "test_auth_flow.py"])
def test_data_dir_without_local_is_a_configuration_error(runs, script):
    run = result(runs[0], f"{script} without --local")
    assert_failed(run, 2, "--data-dir only applies with --local")


def test_help_says_where_the_data_goes(tmp_path):
    helps = run_many({s: (s, ("--help",), base_env(), tmp_path)
                      for s in ("test_connection.py", "test_auth_flow.py", "local_scalekit.py")})
    for script in ("test_connection.py", "test_auth_flow.py"):
        text = " ".join(result(helps, script).stdout.split())
        assert "--data-dir DIR --local only" in text and "temporary folder, deleted when the run ends" in text, text
    server = " ".join(result(helps, "local_scalekit.py").stdout.split())
    assert "<repo>" not in server
    assert f"default: .local-scalekit in the skill folder, {REPO / '.local-scalekit'})" in server, server
