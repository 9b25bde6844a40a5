"""The dashboard's pages carry security headers that keep other sites' code and frames out."""

import pytest

from cloudmon.server.app import create_app
from cloudmon.storage import open_storage


@pytest.fixture
def client(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/headers.db")
    yield create_app({"CLOUDMON_STORAGE": storage}).test_client()
    storage.close()


@pytest.mark.parametrize("path", ["/", "/assets/app.js", "/assets/catalogue.json"])
def test_security_headers(client, path):
    with client.get(path) as answer:
        assert answer.status_code == 200
        headers = answer.headers
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
