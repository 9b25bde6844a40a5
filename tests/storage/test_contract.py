"""The contract every storage backend passes."""

import math
import struct

import pytest
from store_payloads import T0, node_payload, payloads

from cloudmon.storage.base import Span
from cloudmon.storage.model import IDENTITY, EntityKind
from cloudmon.storage.sqlite import SqliteStorage


def latest(store, kind, names=("cpu_cores",), **filters):
    entities = store.entities(kind, filters)
    return [item["metrics"] for item in store.latest(entities, names)]


def test_write_counts_samples(backend):
    stored = backend.write(payloads(node_payload("n1", T0, [("a", "ns", 0.5)])))
    # node cpu_cores, pod_count and cpu_capacity_cores; the pod's cpu_cores; its container's
    assert stored == 3 + 1 + 1


def test_latest_and_sums(backend):
    backend.write(
        payloads(
            node_payload("n1", T0, [("a", "ns", 0.5), ("b", "ns", 0.25)]),
            node_payload("n2", T0 + 5, [("c", "ns", 1.0)], cpu_cores=2.0),
        )
    )
    assert latest(backend, EntityKind.NAMESPACE) == [{"cpu_cores": 1.75}]
    assert latest(backend, EntityKind.DEPLOYMENT, namespace="ns") == [{"cpu_cores": 1.75}]
    assert latest(backend, EntityKind.CLUSTER, ("cpu_cores", "node_count")) == [
        {"cpu_cores": 3.0, "node_count": 2}
    ]
    assert latest(backend, EntityKind.POD, name="b") == [{"cpu_cores": 0.25}]


def test_replace_never_double_counts(backend):
    first = node_payload("n1", T0, [("a", "ns", 0.5), ("b", "ns", 0.25)])
    backend.write(payloads(first))
    backend.write(payloads(first, first))
    backend.write(payloads(node_payload("n1", T0 + 9, [("a", "ns", 2.0)])))
    namespace = latest(backend, EntityKind.NAMESPACE, ("cpu_cores", "pod_count"))
    if isinstance(backend, SqliteStorage):
        assert namespace == [{"cpu_cores": 2.0, "pod_count": 1}]
    else:  # remote-write cannot delete the first report's pod b
        assert namespace == [{"cpu_cores": 2.25, "pod_count": 2}]
    assert latest(backend, EntityKind.POD, name="a") == [{"cpu_cores": 2.0}]
    assert latest(backend, EntityKind.CLUSTER, ("node_count",)) == [{"node_count": 1}]


def test_limits_of_a_group_with_unlimited_pods_are_unlimited(backend):
    pods = node_payload("n1", T0, [("a", "ns", 1.0), ("b", "ns", 1.0), ("c", "other", 1.0)])
    for pod, limit, request in zip(pods["pods"], (1.5, None, 0.5), (0.25, None, 0.25), strict=True):
        pod["cpu_limit_cores"], pod["cpu_request_cores"] = limit, request
        pod["memory_limit_bytes"] = None if limit is None else 1 << 30
    backend.write(payloads(pods))
    names = ("cpu_limit_cores", "memory_limit_bytes", "cpu_request_cores", "pod_count")
    assert latest(backend, EntityKind.NAMESPACE, names) == [
        # one of two pods has no limit: the namespace has none; requests add up
        {"cpu_limit_cores": None, "memory_limit_bytes": None, "cpu_request_cores": 0.25,
         "pod_count": 2},
        {"cpu_limit_cores": 0.5, "memory_limit_bytes": 1 << 30, "cpu_request_cores": 0.25,
         "pod_count": 1},
    ]  # fmt: skip


def test_batch_is_all_or_nothing(backend):
    good = payloads(node_payload("n1", T0, [("a", "ns", 0.5)]))[0]
    bad = payloads(node_payload("n2", T0, [("b", "ns", 0.5)]))[0]
    bad.pods[0].cpu_cores = "not a number"
    # What packing the value raises: SQLite's row codec float() (ValueError), the remote-write
    # encoder struct (struct.error). Ingest refuses such payloads before any store sees them.
    with pytest.raises((ValueError, struct.error)):
        backend.write([good, bad])
    assert backend.entities(EntityKind.NODE) == []
    assert backend.entities(EntityKind.POD) == []
    backend.write([good])
    assert latest(backend, EntityKind.NAMESPACE) == [{"cpu_cores": 0.5}]


def test_entities_since_and_span(backend):
    backend.write(payloads(node_payload("old", T0, []), node_payload("new", T0 + 100, [])))
    assert [e.identity["node"] for e in backend.entities(EntityKind.NODE, since=T0 + 50)] == ["new"]
    span = Span(T0 - 20, T0 + 20, 10)
    assert [e.identity["node"] for e in backend.entities(EntityKind.NODE, span=span)] == ["old"]


def test_series_steps_and_gaps(backend):
    for offset, cores in ((0, 1.0), (10, 3.0), (40, 5.0)):
        backend.write(payloads(node_payload("n1", T0 + offset, [], cpu_cores=cores)))
    entities = backend.entities(EntityKind.NODE)
    (got,) = backend.series(entities, ("cpu_cores",), Span(T0, T0 + 40, 20, "avg"))
    assert got == {"timestamps": [T0, T0 + 20, T0 + 40], "cpu_cores": [2.0, None, 5.0]}
    (empty,) = backend.series(entities, ("cpu_cores",), Span(T0 + 1, T0 + 9, 10))
    assert empty == {"timestamps": [], "cpu_cores": []}


def test_ping_and_stats(backend):
    backend.ping()
    if isinstance(backend, SqliteStorage):
        assert backend.stats()["bytes"] > 0
    else:  # the engine's size on disk is not part of the Prometheus HTTP API
        assert math.isnan(backend.stats()["bytes"])


def test_identity_fields(backend):
    backend.write(payloads(node_payload("n1", T0, [("a", "ns", 0.5)])))
    for kind in EntityKind:
        for entity in backend.entities(kind):
            assert tuple(entity.identity) == IDENTITY[kind]


def cluster_latest(store):
    (answer,) = store.latest(store.entities(EntityKind.CLUSTER), ("cpu_cores", "node_count"))
    return answer["timestamp"], answer["metrics"]


def test_cluster_latest_is_the_newest_complete_bucket(backend):
    for offset in (0, 10):
        backend.write(payloads(node_payload("n1", T0 + offset), node_payload("n2", T0 + offset)))
    backend.write(payloads(node_payload("n1", T0 + 20, cpu_cores=5.0)))
    assert cluster_latest(backend) == (T0 + 10, {"cpu_cores": 2.0, "node_count": 2})
    backend.write(payloads(node_payload("n2", T0 + 21, cpu_cores=3.0)))
    assert cluster_latest(backend) == (T0 + 20, {"cpu_cores": 8.0, "node_count": 2})


def test_cluster_latest_forgets_nodes_silent_for_a_minute(backend, clock):
    backend.write(payloads(node_payload("n1", T0), node_payload("n2", T0)))
    for offset in range(10, 70, 10):
        backend.write(payloads(node_payload("n1", T0 + offset)))
    clock.now = T0 + 65
    assert cluster_latest(backend)[0] == T0 + 50
    backend.write(payloads(node_payload("n1", T0 + 70)))
    clock.now = T0 + 75
    assert cluster_latest(backend) == (T0 + 70, {"cpu_cores": 1.0, "node_count": 1})


def names_in(store, kind, span, field="name"):
    return [entity.identity[field] for entity in store.entities(kind, span=span)]


def test_a_window_lists_what_has_a_sample_in_it(backend):
    backend.write(payloads(node_payload("n1", T0, [("gap", "ns", 1.0), ("late", "ns", 1.0)])))
    backend.write(payloads(node_payload("n2", T0 + 50, [("inside", "ns", 1.0)])))
    backend.write(payloads(node_payload("n3", T0 + 70, [("late", "ns", 1.0)])))
    backend.write(payloads(node_payload("n1", T0 + 100, [("gap", "ns", 1.0), ("late", "ns", 1.0)])))
    span = Span(T0 + 10, T0 + 90, 10)
    assert names_in(backend, EntityKind.POD, span) == ["inside", "late"]
    assert names_in(backend, EntityKind.NODE, span, "node") == ["n2", "n3"]
    assert names_in(backend, EntityKind.NAMESPACE, span, "namespace") == ["ns"]
    assert names_in(backend, EntityKind.POD, Span(T0 + 10, T0 + 40, 10)) == []
    assert names_in(backend, EntityKind.POD, Span(T0, T0 + 100, 10)) == ["gap", "inside", "late"]


def test_a_one_bucket_window_lists_only_what_has_a_sample_in_that_bucket(backend):
    backend.write(payloads(node_payload("n1", T0, [("gap", "ns", 1.0)])))
    backend.write(payloads(node_payload("n1", T0 + 20, [("gap", "ns", 1.0)])))
    backend.write(payloads(node_payload("n2", T0 + 10, [("inside", "ns", 1.0)])))
    assert names_in(backend, EntityKind.POD, Span(T0 + 10, T0 + 10, 10)) == ["inside"]
