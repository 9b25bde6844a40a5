"""The run's end (`fixtures.skips`): a skipped test is listed with its reason, and fails the run
where CLOUDMON_NO_SKIPS says the machine runs every test; the real kernel's cgroup reader is
named."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def run(tmp_path, body: str, no_skips: bool) -> subprocess.CompletedProcess:
    """pytest on one test file of `body`, with the plugin, in a directory of its own."""
    (tmp_path / "test_one.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if k != "CLOUDMON_NO_SKIPS"}
    env["PYTHONPATH"] = str(TESTS)
    if no_skips:
        env["CLOUDMON_NO_SKIPS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "fixtures.skips", "-q", "-p", "no:cacheprovider"]
        + ["--rootdir", str(tmp_path), str(tmp_path / "test_one.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


SKIPPING = """import pytest
def test_passes():
    pass
def test_skipped():
    pytest.skip("needs a thing this machine lacks")
"""


@pytest.mark.parametrize("no_skips", [False, True])
def test_a_skip_is_listed_and_fails_where_every_test_runs(tmp_path, no_skips):
    done = run(tmp_path, SKIPPING, no_skips)
    assert "skipped 1: needs a thing this machine lacks" in done.stdout
    assert "reader met" in done.stdout and "fixture trees only" in done.stdout
    assert done.returncode == (1 if no_skips else 0), done.stdout
    assert ("FAILED: CLOUDMON_NO_SKIPS" in done.stdout) is no_skips


def test_a_run_without_skips_passes_where_every_test_runs(tmp_path):
    done = run(tmp_path, "def test_passes():\n    pass\n", no_skips=True)
    assert done.returncode == 0, done.stdout
    assert "skipped: none" in done.stdout
