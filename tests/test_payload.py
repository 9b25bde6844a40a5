import gc

import msgspec
import pytest

from cloudmon import payload
from cloudmon.metrics import CATALOGUE, Scope, metrics_for


def _valid(**overrides):
    body = {
        "schema": 1,
        "node": "worker-1",
        "timestamp": 1764100000.0,
        "interval": 10.0,
        "node_info": {"cpu_count": 4, "memory_total_bytes": 8000000000, "cgroup_version": 2},
        "node_metrics": {"cpu_cores": 1.5, "memory_used_bytes": 1000},
        "pods": [
            {
                "uid": "1b6f0c7e-9b1d-4c55-8e7a-0a1b2c3d4e5f",
                "name": "web-7d4b9c-x2x4z",
                "namespace": "shop",
                "deployment": "web",
                "workload_kind": "Deployment",
                "workload": "web",
                "node": "worker-1",
                "qos": "burstable",
                "containers": [{"id": "ab" * 32, "name": "nginx", "cpu_cores": 0.25}],
                "cpu_cores": 0.3,
            }
        ],
    }
    body.update(overrides)
    return body


def test_metric_fields_come_from_the_catalogue():
    for struct, scope in (
        (payload.NodeMetrics, Scope.NODE),
        (payload.Pod, Scope.POD),
        (payload.Container, Scope.CONTAINER),
    ):
        fields = set(struct.__struct_fields__)
        assert {m.name for m in metrics_for(scope)} <= fields
        others = {m.name for m in CATALOGUE} - {m.name for m in metrics_for(scope)}
        assert not (others & fields)


def test_round_trip():
    [decoded] = payload.decode(msgspec.json.encode(_valid()))
    assert decoded.pods[0].containers[0].cpu_cores == 0.25
    assert decoded.pods[0].memory_usage_bytes is None
    again = msgspec.json.decode(payload.encode(decoded))
    assert again["pods"][0]["name"] == "web-7d4b9c-x2x4z"


def test_decoded_payloads_are_left_out_of_the_cycle_collector():
    # Strict and lenient (a payload with a field this version does not know) alike.
    for body in (_valid(), _valid(newer_field=1)):
        [decoded], _ = payload.decode_reporting(msgspec.json.encode(body))
        assert not gc.is_tracked(decoded)
        assert not gc.is_tracked(decoded.pods[0])


def test_an_array_of_payloads_is_accepted():
    assert len(payload.decode(msgspec.json.encode([_valid(), _valid(timestamp=1764100010.0)]))) == 2


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"schema": 2}, "schema"),
        ({"timestamp": "1764100000"}, "timestamp"),
        ({"node": "a/b"}, "node"),
        ({"node": "x" * 300}, "node"),
        ({"node_metrics": {"cpu_cores": -1}}, "cpu_cores"),
        ({"node_metrics": {"memory_used_bytes": 1.5}}, "memory_used_bytes"),
        ({"interval": 0}, "interval"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(overrides, named):
    with pytest.raises(msgspec.ValidationError, match=named):
        payload.decode(msgspec.json.encode(_valid(**overrides)))


def test_missing_field_is_refused():
    body = _valid()
    del body["node"]
    with pytest.raises(msgspec.ValidationError, match="node"):
        payload.decode(msgspec.json.encode(body))


def test_nan_is_not_json():
    text = msgspec.json.encode(_valid()).replace(b'"cpu_cores":1.5', b'"cpu_cores":NaN')
    with pytest.raises(msgspec.DecodeError):
        payload.decode(text)
