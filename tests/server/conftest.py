import json

import pytest
from fixtures.prometheus import STORES, prometheus  # noqa: F401
from fixtures.rightsizing import bodies
from fixtures.victoriametrics import victoriametrics  # noqa: F401
from server_payloads import T0, Clock

from cloudmon import payload as wire
from cloudmon.server.app import create_app
from cloudmon.storage.sqlite import SqliteStorage

RIGHTSIZE_HOUR = 1_764_097_200  # an hour's start: the right-sizing workloads' first

# Where the server on the Prometheus store answers otherwise, on either engine, and why; each
# of these tests asserts the engine's answer there and the rest as on SQLite:
# - a bucket reported again keeps the first report's pods and containers that the second one
#   lacks: remote-write cannot delete samples (the second report's values do replace the
#   first's). test_a_bucket_sent_again_replaces_its_containers,
#   test_second_sample_without_a_pod_drops_its_share
# - the engine's size on disk is not part of the Prometheus HTTP API: cloudmon_storage_bytes
#   is NaN. test_server_figures
# - the engine keeps its own retention and answers every span from its samples: nothing to
#   roll up or expire. test_upkeep_rolls_up_then_expires


@pytest.fixture
def clock():
    return Clock(T0 + 25)


@pytest.fixture(params=sorted(STORES))
def storage(request, tmp_path, clock):
    if request.param == "sqlite":
        store = SqliteStorage(tmp_path / "cloudmon.db", clock=clock)
    else:
        store = request.getfixturevalue(request.param).open_store(clock=clock)
    yield store
    store.close()


@pytest.fixture
def app(storage, clock):
    return create_app({"CLOUDMON_STORAGE": storage, "CLOUDMON_NOW": clock})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def post(client):
    def send(body):
        response = client.post("/api/ingest", json=body)
        assert response.status_code == 200, response.json
        return response

    return send


@pytest.fixture(scope="module")
def rightsize_client(tmp_path_factory):
    """A client of the app on a store holding the right-sizing workloads' two hours
    (`fixtures.rightsizing`), rolled up."""
    clock = Clock(RIGHTSIZE_HOUR)
    store = SqliteStorage(tmp_path_factory.mktemp("rightsize") / "store.db", clock=clock)
    for body in bodies(RIGHTSIZE_HOUR):
        clock.now = body["timestamp"]
        store.write(wire.decode(json.dumps([body]).encode()))
    clock.now = RIGHTSIZE_HOUR + 3 * 3600 + 200
    store.roll_up()
    app = create_app({"CLOUDMON_STORAGE": store, "CLOUDMON_NOW": clock})
    yield app.test_client()
    store.close()
