"""Makes tests/fixtures importable from every test (`from fixtures.nodebuilder import ...`),
and gives the session its one Playwright driver."""

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


@pytest.fixture(scope="session")
def playwright():
    """The session's one Playwright driver: its sync API runs one at a time."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as driver:
        yield driver
