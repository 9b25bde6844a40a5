import pytest
from fixtures.prometheus import STORES, prometheus, store_url  # noqa: F401
from fixtures.victoriametrics import victoriametrics  # noqa: F401
from store_payloads import T0, Clock

from cloudmon.storage import open_storage

# Where the Prometheus store answers otherwise, on either engine, and why; each of these tests
# asserts the engine's answer there and the rest as on SQLite:
# - a bucket reported again keeps the first report's pods that the second one lacks:
#   remote-write cannot delete samples (the second report's values do replace the first's).
#   test_replace_never_double_counts
# - the engine's size on disk is not part of the Prometheus HTTP API: stats() gives NaN.
#   test_ping_and_stats
# Rollups are the embedded store's own (test_rollups.py runs on it alone): the engine answers
# every span from its raw samples and keeps its own retention.


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
