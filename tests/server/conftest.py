import pytest

from cloudmon.server.app import create_app
from cloudmon.storage.sqlite import SqliteStorage

T0 = 1_764_100_000  # a bucket start


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pod(uid, name=None, namespace=None, deployment=None, **metrics):
    return {
        "uid": uid,
        "name": name,
        "namespace": namespace,
        "deployment": deployment,
        "workload_kind": "Deployment" if deployment else None,
        "workload": deployment,
        "qos": "burstable",
        "containers": [],
        **metrics,
    }


def payload(node, timestamp, pods=(), cpu_count=4, **node_metrics):
    return {
        "schema": 1,
        "node": node,
        "timestamp": timestamp,
        "interval": 10.0,
        "node_info": {"cpu_count": cpu_count, "memory_total_bytes": 8_000_000_000},
        "node_metrics": {"pod_count": len(pods), **node_metrics},
        "pods": list(pods),
    }


@pytest.fixture
def clock():
    return Clock(T0 + 25)


@pytest.fixture
def storage(tmp_path):
    store = SqliteStorage(tmp_path / "cloudmon.db")
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
