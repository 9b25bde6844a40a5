import shutil
import time
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


@pytest.fixture(scope="session")
def browser(playwright):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    if not (STATIC / "uPlot.iife.min.js").exists():
        pytest.fail("uPlot is not in the package: run `cd web && npm ci && npm run build`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def _cluster_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cluster")
    with running_server(directory) as base:
        yield base, [ingest_cluster(base, NODES, PODS, 900)]


@pytest.fixture
def cluster(_cluster_server):
    """A real server holding 15 minutes up to now of a 3-node cluster of 18 pods.

    Lists without a range show what reported in the last 30 s, so each test starts with the
    buckets since the previous one's, as the cluster's agents would have sent them."""
    base, ends = _cluster_server
    now = time.time()
    seconds = int(now - ends[-1]) // 10 * 10
    if seconds:
        ends.append(ingest_cluster(base, NODES, PODS, seconds, end=ends[-1] + seconds))
    return base


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
