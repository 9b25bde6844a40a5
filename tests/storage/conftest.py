import pytest
from fixtures.prometheus import STORES, mark_differences, prometheus, store_url  # noqa: F401
from fixtures.victoriametrics import victoriametrics  # noqa: F401
from store_payloads import T0, Clock

from cloudmon.storage import open_storage

# Where the Prometheus store must answer otherwise, on either engine, and why.
PROMETHEUS_DIFFERS = {
    "test_replace_never_double_counts": (
        "a bucket reported again keeps the first report's pods that the second one lacks: "
        "remote-write cannot delete samples (the second report's values do replace the first's)"
    ),
    "test_ping_and_stats": (
        "the engine's size on disk is not part of the Prometheus HTTP API: stats() gives NaN"
    ),
}

# Tests of the embedded store's own workings.
SQLITE_ONLY = {
    "test_rollups.py": "rollups are the embedded store's: the engine answers every span "
    "from its raw samples and keeps its own retention",
}


def pytest_collection_modifyitems(items):
    for engine in ("prometheus", "victoriametrics"):
        mark_differences(items, engine, PROMETHEUS_DIFFERS, SQLITE_ONLY)


@pytest.fixture
def clock():
    return Clock(T0 + 25)


@pytest.fixture(params=sorted(STORES))
def backend(request, tmp_path, clock):
    if request.param == "sqlite":
        store = open_storage(f"sqlite:///{tmp_path}/store.db", clock=clock)
    else:
        store = request.getfixturevalue(request.param).open_store(clock=clock)
    yield store
    store.close()
