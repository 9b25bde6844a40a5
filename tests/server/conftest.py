import pytest
from server_payloads import T0, Clock

from cloudmon.server.app import create_app
from cloudmon.storage.sqlite import SqliteStorage


@pytest.fixture
def clock():
    return Clock(T0 + 25)


@pytest.fixture
def storage(tmp_path, clock):
    store = SqliteStorage(tmp_path / "cloudmon.db", clock=clock)
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
