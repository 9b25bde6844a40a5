import shutil
from pathlib import Path

import pytest
from fixtures.servers import running_server
from livecluster import (
    ARTIFACTS,
    CHROMIUM,
    NODES,
    PODS,
    ingest_cluster,
    launch_chromium,
)

from cloudmon.dashboard import STATIC

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    if not (STATIC / "uPlot.iife.min.js").exists():
        pytest.fail("uPlot is not in the package: run `cd web && npm ci && npm run build`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A real server holding 15 minutes of a 3-node cluster of 18 pods."""
    directory = tmp_path_factory.mktemp("cluster")
    with running_server(directory) as base:
        ingest_cluster(base, NODES, PODS, 900)
        yield base


@pytest.fixture
def empty_server(tmp_path):
    with running_server(tmp_path, workers=1) as base:
        yield base


class Console:
    """The page's console errors and uncaught exceptions."""

    def __init__(self, page):
        self.errors = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.fixture
def page(browser):
    """A fresh page at laptop width; the test fails on any console error."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.console = Console(page)
    yield page
    context.close()
    assert page.console.errors == []


@pytest.fixture(scope="session", autouse=True)
def _fresh_artifacts():
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
