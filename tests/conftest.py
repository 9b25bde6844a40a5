"""Makes tests/fixtures importable from every test (`from fixtures.nodebuilder import ...`),
gives the session its one Playwright driver, and ends the run with what it did not prove: the
tests skipped, by reason, and which cgroup reader met this machine's real kernel. With
CLOUDMON_NO_SKIPS set (`.ci/run`: a machine with root, a writable cgroup file system and the
Debian packages the Makefile installs, which runs every test), a skipped test fails the run."""

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from fixtures.skips import pytest_sessionfinish, pytest_terminal_summary  # noqa: E402, F401


@pytest.fixture(scope="session")
def playwright():
    """The session's one Playwright driver: its sync API runs one at a time."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as driver:
        yield driver
