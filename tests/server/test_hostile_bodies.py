"""Hostile ingest bodies: each gets a 4xx naming the problem, and nothing of it is stored."""

import json

import pytest
from server_payloads import T0, payload, pod
from test_auth import INGEST_TOKEN, READ_TOKEN, bearer, guarded  # noqa: F401 (fixture)

from cloudmon.storage.model import EntityKind

GOOD = payload("n1", T0 + 1, [pod("uid-a", "a", "shop", "web", cpu_cores=0.5)], cpu_cores=1.0)


def send(client, body: bytes):
    return client.post("/api/ingest", data=body, headers={"Content-Type": "application/json"})


@pytest.fixture
def nothing_stored(storage):
    yield
    for kind in EntityKind:
        assert storage.entities(kind) == []


def _refused(answer, *words):
    """A malformed payload: 400 (contract section 4), the error naming what is wrong."""
    assert answer.status_code == 400, answer.data
    message = answer.json["error"]
    for word in words:
        assert word in message
    return message


def _with(change) -> bytes:
    body = json.loads(json.dumps(GOOD))
    change(body)
    return json.dumps(body).encode()


def test_invalid_utf8(client, nothing_stored):
    body = json.dumps(GOOD).replace('"shop"', '"sh\\u00f6p"').encode()
    body = body.replace(b"\\u00f6", b"\xff\xfe")
    _refused(send(client, body), "UTF-8")


def test_a_million_element_array(client, nothing_stored):
    body = b'{"schema": 1, "pods": [' + b",".join([b"0"] * 1_000_000) + b"]}"
    _refused(send(client, body))


@pytest.mark.parametrize("value", ["1e400", "-1e400", "123456789012345678901234567890"])
def test_huge_numbers(client, nothing_stored, value):
    body = json.dumps(GOOD).replace('"cpu_cores": 1.0', f'"cpu_cores": {value}')
    assert value in body
    _refused(send(client, body.encode()), "cpu_cores")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "web\x00pod"),
        ("name", ".."),
        ("namespace", "../etc"),
        ("name", "x" * 10_240),
        ("deployment", "a/b"),
    ],
)
def test_hostile_names(client, nothing_stored, field, value):
    _refused(send(client, _with(lambda b: b["pods"][0].update({field: value}))), field)


def test_hostile_node_name(client, nothing_stored):
    _refused(send(client, _with(lambda b: b.update(node="../../etc/passwd"))), "node")


def test_the_read_token_does_not_write(guarded, storage):  # noqa: F811 (fixture)
    answer = guarded.post("/api/ingest", json=GOOD, headers=bearer(READ_TOKEN))
    assert answer.status_code == 401
    assert storage.entities(EntityKind.NODE) == []
    assert guarded.post("/api/ingest", json=GOOD, headers=bearer(INGEST_TOKEN)).status_code == 200
