import gzip
import json

import pytest
from server_payloads import T0, payload, pod

from cloudmon.storage.model import EntityKind

GOOD = payload("n1", T0 + 1, [pod("uid-a", "a", "shop", "web", cpu_cores=0.5)], cpu_cores=1.0)


def send(client, body: bytes, content_type="application/json", **headers):
    return client.post("/api/ingest", data=body, headers={"Content-Type": content_type, **headers})


def refused(response, status, *words):
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    message = response.json["error"]
    for word in words:
        assert word in message
    return message


@pytest.fixture
def nothing_stored(storage):
    yield
    for kind in EntityKind:
        assert storage.entities(kind) == []


def with_changes(change):
    body = json.loads(json.dumps(GOOD))
    change(body)
    return json.dumps(body).encode()


def test_stores_one_payload(client, storage):
    response = send(client, json.dumps(GOOD).encode())
    assert response.status_code == 200
    assert response.json == {"payloads": 1, "samples": 4, "ignored_fields": []}
    assert [e.identity["node"] for e in storage.entities(EntityKind.NODE)] == ["n1"]


def test_stores_an_array_gzipped(client, storage):
    later = payload("n1", T0 + 11, [], cpu_cores=2.0)
    body = gzip.compress(json.dumps([GOOD, later]).encode())
    response = send(client, body, **{"Content-Encoding": "gzip"})
    assert response.json["payloads"] == 2
    (node,) = storage.entities(EntityKind.NODE)
    assert node.last_bucket == T0 + 10


def test_not_json(client, nothing_stored):
    refused(send(client, b"this is not json"), 400, "body", "JSON")


def test_not_json_content_type(client, nothing_stored):
    refused(send(client, json.dumps(GOOD).encode(), "text/plain"), 415, "Content-Type")


def test_unknown_content_encoding(client, nothing_stored):
    response = send(client, json.dumps(GOOD).encode(), **{"Content-Encoding": "br"})
    refused(response, 415, "Content-Encoding")


def test_number_as_string(client, nothing_stored):
    body = with_changes(lambda b: b["node_metrics"].update(cpu_cores="1.0"))
    refused(send(client, body), 400, "$.node_metrics.cpu_cores", "float")


def test_wrong_type_in_pod(client, nothing_stored):
    body = with_changes(lambda b: b["pods"][0].update(memory_usage_bytes=[1]))
    refused(send(client, body), 400, "$.pods[0].memory_usage_bytes")


def test_missing_field(client, nothing_stored):
    refused(send(client, with_changes(lambda b: b.pop("timestamp"))), 400, "timestamp")


def test_unknown_schema(client, nothing_stored):
    refused(send(client, with_changes(lambda b: b.update(schema=2))), 400, "$.schema")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity(client, nothing_stored, literal):
    body = json.dumps(GOOD).replace('"cpu_cores": 1.0', f'"cpu_cores": {literal}').encode()
    assert literal.encode() in body
    refused(send(client, body), 400)


def test_negative_counter(client, nothing_stored):
    body = with_changes(lambda b: b["pods"][0].update(cpu_usage_seconds_total=-1.0))
    refused(send(client, body), 400, "$.pods[0].cpu_usage_seconds_total")


def test_huge_array(client, nothing_stored):
    many = [pod(f"uid-{i}", cpu_cores=0.0) for i in range(10_001)]
    refused(send(client, with_changes(lambda b: b.update(pods=many))), 400, "$.pods")


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "a/b"), ("name", "web\n"), ("namespace", ""), ("deployment", "-web"), ("uid", "a.b")],
)
def test_bad_name_in_pod(client, nothing_stored, field, value):
    body = with_changes(lambda b: b["pods"][0].update({field: value}))
    refused(send(client, body), 400, f"$.pods[0].{field}")


def test_name_already_seen_is_still_checked_as_a_uid(client, storage):
    seen = payload("n1", T0 + 1, [pod("uid-a", "a.b", "shop")])
    assert send(client, json.dumps(seen).encode()).status_code == 200
    reused = payload("n1", T0 + 1, [pod("a.b", "a.b", "shop")])
    refused(send(client, json.dumps(reused).encode()), 400, "$.pods[0].uid")
    assert [pod.identity["uid"] for pod in storage.entities(EntityKind.POD)] == ["uid-a"]


def test_bad_container_id_in_the_second_payload_of_an_array(client, nothing_stored):
    bad = json.loads(json.dumps(GOOD))
    bad["pods"][0]["containers"] = [{"id": "c 1", "name": "web"}]
    body = json.dumps([GOOD, bad]).encode()
    refused(send(client, body), 400, "$[1].pods[0].containers[0].id")


def test_huge_string(client, nothing_stored):
    refused(send(client, with_changes(lambda b: b.update(node="n" * 100_000))), 400, "$.node")


def test_deep_nesting(client, nothing_stored):
    body = json.dumps(GOOD)[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
    refused(send(client, body.encode()), 400, "body", "nested")


def test_gzip_bomb(client, nothing_stored):
    bomb = gzip.compress(b"[" + b" " * (17 * 1024 * 1024) + b"]")
    assert len(bomb) < 100_000
    response = send(client, bomb, **{"Content-Encoding": "gzip"})
    refused(response, 413, "after decompression")


def test_bad_gzip(client, nothing_stored):
    response = send(client, b"\x1f\x8bnot gzip at all", **{"Content-Encoding": "gzip"})
    refused(response, 400, "gzip")


def test_truncated_gzip(client, nothing_stored):
    body = gzip.compress(json.dumps(GOOD).encode())[:-12]
    refused(send(client, body, **{"Content-Encoding": "gzip"}), 400, "gzip")


def test_body_over_the_limit(client, nothing_stored):
    refused(send(client, b" " * (16 * 1024 * 1024 + 1)), 413, "limit")


def test_empty_array(client, nothing_stored):
    refused(send(client, b"[]"), 400, "no payload")


def test_duplicate_pod(client, nothing_stored):
    body = with_changes(lambda b: b["pods"].append(b["pods"][0]))
    refused(send(client, body), 400, "duplicate", "$.pods[1].uid")


def test_timestamp_in_the_future(client, nothing_stored):
    body = with_changes(lambda b: b.update(timestamp=T0 + 86_400))
    refused(send(client, body), 400, "$.timestamp", "ahead of the server's clock", "n1")


def test_timestamp_older_than_the_raw_retention(client, nothing_stored):
    body = with_changes(lambda b: b.update(timestamp=T0 - 2 * 86_400))
    refused(send(client, body), 400, "$.timestamp", "retention")


def test_one_bad_payload_stores_none_of_the_array(client, nothing_stored):
    bad = payload("n2", T0 + 1, [pod("uid-b", cpu_cores="fast")])
    refused(send(client, json.dumps([GOOD, bad]).encode()), 400, "$[1].pods[0].cpu_cores")


def test_get_on_ingest_is_405(client):
    refused(client.get("/api/ingest"), 405)


def test_unknown_fields_are_stored_around_and_named(client, storage, caplog):
    def misspell(body):
        body["node_metrics"]["cpu_kores"] = 1.0
        body["pods"][0]["gpu_cores"] = 2.0
        body["added_by_a_newer_agent"] = {"x": 1}

    for _ in range(2):
        response = send(client, with_changes(misspell))
        assert response.status_code == 200, response.json
        assert response.json["ignored_fields"] == [
            "added_by_a_newer_agent",
            "node_metrics.cpu_kores",
            "pods[].gpu_cores",
        ]
    assert client.get("/api/nodes/n1").json["metrics"]["cpu_cores"] == 1.0
    exposition = client.get("/metrics").text
    assert 'cloudmon_ingest_ignored_fields_total{field="node_metrics.cpu_kores"} 2.0' in exposition
    assert 'cloudmon_ingest_ignored_fields_total{field="pods[].gpu_cores"} 2.0' in exposition
    logged = [r.getMessage() for r in caplog.records if "cpu_kores" in r.getMessage()]
    assert len(logged) == 1


def test_an_unknown_field_does_not_hide_a_bad_one(client, nothing_stored):
    def change(body):
        body["node_metrics"]["cpu_kores"] = 1.0
        body["pods"][0]["cpu_cores"] = "fast"

    refused(send(client, with_changes(change)), 400, "$.pods[0].cpu_cores")
