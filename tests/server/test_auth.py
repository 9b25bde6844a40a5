import logging

import pytest
from server_payloads import T0, payload

from cloudmon.server.app import create_app
from cloudmon.server.auth import read_token

INGEST_TOKEN = "s3cret-ingest"
READ_TOKEN = "s3cret-read"


@pytest.fixture
def guarded(storage, clock):
    config = {
        "CLOUDMON_STORAGE": storage,
        "CLOUDMON_NOW": clock,
        "CLOUDMON_TOKEN": INGEST_TOKEN,
        "CLOUDMON_READ_TOKEN": READ_TOKEN,
    }
    return create_app(config).test_client()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": INGEST_TOKEN}])
def test_ingest_refuses_without_the_token(guarded, storage, headers):
    response = guarded.post("/api/ingest", json=payload("n1", T0), headers=headers)
    assert response.status_code == 401
    assert "Authorization" in response.json["error"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert storage.entities("node") == []


def test_ingest_takes_the_token(guarded):
    response = guarded.post("/api/ingest", json=payload("n1", T0), headers=bearer(INGEST_TOKEN))
    assert response.status_code == 200


def test_reads_need_the_read_token(guarded):
    assert guarded.get("/api/nodes").status_code == 401
    assert guarded.get("/api/nodes", headers=bearer(INGEST_TOKEN)).status_code == 401
    assert guarded.get("/api/nodes", headers=bearer(READ_TOKEN)).status_code == 200


def test_health_is_open(guarded):
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/readyz").status_code == 200


def test_no_token_no_check(client):
    assert client.post("/api/ingest", json=payload("n1", T0)).status_code == 200


def test_token_never_logged(guarded, caplog):
    with caplog.at_level(logging.DEBUG):
        guarded.post("/api/ingest", json=payload("n1", T0), headers=bearer("guess"))
        guarded.post("/api/ingest", json=payload("n1", T0), headers=bearer(INGEST_TOKEN))
    assert "guess" not in caplog.text
    assert INGEST_TOKEN not in caplog.text


def test_token_file_white_space_is_ignored(tmp_path):
    path = tmp_path / "token"
    path.write_text("  abc123\n")
    assert read_token(path) == "abc123"
    assert read_token(None) is None


def test_empty_token_file_is_an_error(tmp_path):
    path = tmp_path / "token"
    path.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        read_token(path)
