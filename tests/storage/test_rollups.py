"""Rollups of the embedded store, through the storage contract: the same answers as the raw
samples they replace."""

import pytest
from store_payloads import H0, node_payload, payloads

from cloudmon.server.timeparams import default_step
from cloudmon.storage.base import AGGREGATIONS, Span
from cloudmon.storage.model import EntityKind
from cloudmon.storage.sqlite import SqliteStorage


def cores(i: int) -> float:
    return float((i * 7) % 13)


@pytest.fixture
def store(tmp_path, clock):
    """The embedded store alone: the engines answer every span from their raw samples and
    keep their own retention."""
    store = SqliteStorage(tmp_path / "store.db", clock=clock)
    yield store
    store.close()


@pytest.fixture
def two_hours(store, clock):
    """Node n1 every 10 s for two hours from H0, with one pod in namespace ns."""
    for i in range(720):
        pods = [("a", "ns", cores(i) / 2)]
        store.write(payloads(node_payload("n1", H0 + 10 * i + 1, pods, cpu_cores=cores(i))))
    clock.now = H0 + 7200 + 90
    return store


def answer(store, kind, span, names=("cpu_cores",)):
    return store.series(store.entities(kind), names, span)[0]


def assert_same(got, expected):
    assert got.keys() == expected.keys()
    for name, values in expected.items():
        assert got[name] == pytest.approx(values), name


@pytest.mark.parametrize("agg", AGGREGATIONS)
@pytest.mark.parametrize("step", [60, 300, 3600])
def test_rollups_answer_as_raw_did(two_hours, agg, step):
    span = Span(H0, H0 + 7190, step, agg)
    kinds = (EntityKind.NODE, EntityKind.CONTAINER)
    raw = [answer(two_hours, kind, span) for kind in kinds]
    assert two_hours.resolution(span) == (3600 if step == 3600 else 60)
    assert two_hours.roll_up() == 120 + 2
    for kind, before in zip(kinds, raw, strict=True):
        rolled = answer(two_hours, kind, span)
        assert rolled["timestamps"] == before["timestamps"]
        assert rolled["cpu_cores"] == pytest.approx(before["cpu_cores"]), kind
    assert raw[1]["cpu_cores"] == pytest.approx([c / 8 for c in raw[0]["cpu_cores"]])


def test_namespace_and_cluster_rollups(two_hours):
    span = Span(H0, H0 + 7190, 3600, "max")
    names = ("cpu_cores", "cpu_percent", "node_count")
    raw_cluster = answer(two_hours, EntityKind.CLUSTER, span, names)
    raw_ns = answer(two_hours, EntityKind.NAMESPACE, span, ("cpu_cores", "pod_count"))
    two_hours.roll_up()
    assert_same(answer(two_hours, EntityKind.CLUSTER, span, names), raw_cluster)
    assert raw_cluster["cpu_percent"] == [300.0, 300.0]  # 12 cores of 4
    ns = answer(two_hours, EntityKind.NAMESPACE, span, ("cpu_cores", "pod_count"))
    assert_same(ns, raw_ns)


def test_recent_part_comes_from_raw(two_hours, clock):
    two_hours.roll_up()
    two_hours.write(payloads(node_payload("n1", H0 + 7200 + 1, [], cpu_cores=50.0)))
    clock.now = H0 + 7200 + 20
    got = answer(two_hours, EntityKind.NODE, Span(H0, H0 + 7200, 3600, "max"))
    assert got["cpu_cores"] == [12.0, 12.0, 50.0]


def test_late_data_is_rolled_up_again(two_hours):
    two_hours.roll_up()
    two_hours.write(payloads(node_payload("n1", H0 + 11, [("a", "ns", 40.0)], cpu_cores=99.0)))
    assert two_hours.roll_up() == 0  # the period took a late write since the last round
    assert two_hours.roll_up() == 2  # none since: the minute, then the hour
    got = answer(two_hours, EntityKind.NODE, Span(H0, H0 + 7190, 3600, "max"))
    assert got["cpu_cores"] == [99.0, 12.0]
    ns = answer(two_hours, EntityKind.NAMESPACE, Span(H0, H0 + 50, 60, "max"))
    assert ns["cpu_cores"] == [40.0]


def test_expired_raw_data_is_answered_from_rollups(two_hours, clock):
    two_hours.retention[10] = 1800
    span = Span(H0, H0 + 3590, 60, "avg")
    raw = answer(two_hours, EntityKind.NODE, span)
    assert two_hours.expire() == 0  # nothing is rolled up yet, so nothing goes
    two_hours.roll_up()
    assert two_hours.expire() > 0
    assert two_hours.resolution(Span(H0, H0 + 3590, 10, "avg")) == 60
    assert answer(two_hours, EntityKind.NODE, span)["cpu_cores"] == pytest.approx(raw["cpu_cores"])


def test_rollups_expire_too(two_hours, clock):
    two_hours.roll_up()
    clock.now = H0 + 100 * 86400
    assert two_hours.expire() > 0
    got = answer(two_hours, EntityKind.NODE, Span(H0, H0 + 7190, 3600, "max"))
    assert got["cpu_cores"] == [None, None]


def test_resolution_follows_retention_and_step(store, clock):
    clock.now = H0 + 30 * 86400
    recent = clock.now - 3600
    assert store.resolution(Span(recent, clock.now, 10)) == 10
    assert store.resolution(Span(recent, clock.now, 120)) == 60
    assert store.resolution(Span(recent, clock.now, 7200)) == 3600
    assert store.resolution(Span(clock.now - 2 * 86400, clock.now, 10)) == 60
    assert store.resolution(Span(clock.now - 8 * 86400, clock.now, 60)) == 3600


@pytest.mark.parametrize("agg", AGGREGATIONS)
def test_default_week_step_reads_hour_rollups_as_raw(two_hours, clock, agg):
    now = clock.now
    span = Span(now - 7 * 86400, now, default_step(now - 7 * 86400, now), agg)
    names = ("cpu_cores", "cpu_percent", "node_count")
    raw = answer(two_hours, EntityKind.CLUSTER, span, names)
    assert two_hours.resolution(span) == 3600
    two_hours.roll_up()
    assert_same(answer(two_hours, EntityKind.CLUSTER, span, names), raw)
    assert [v for v in raw["node_count"] if v is not None] == (
        [1, 1] if agg != "sum" else [360, 360]
    )


def test_latest_of_expired_raw_samples_comes_from_rollups(two_hours, clock):
    two_hours.write(payloads(node_payload("gone", H0 + 61, [], cpu_cores=3.0)))
    two_hours.write(payloads(node_payload("gone", H0 + 75, [], cpu_cores=7.0)))
    two_hours.retention[10] = 1800
    two_hours.roll_up()
    assert two_hours.expire() > 0
    (node,) = two_hours.entities(EntityKind.NODE, {"name": "gone"})
    (got,) = two_hours.latest([node], ("cpu_cores", "pod_count"))
    assert got == {"timestamp": H0 + 70, "metrics": {"cpu_cores": 7.0, "pod_count": 0}}
    two_hours.retention[60] = 3600
    assert two_hours.expire() > 0
    (got,) = two_hours.latest([node], ("cpu_cores",))
    assert got == {"timestamp": H0 + 70, "metrics": {"cpu_cores": 7.0}}


def test_a_window_of_expired_raw_samples_lists_from_rollups(two_hours):
    for node, offsets in {"gap": (1, 7101), "dot": (1, 901, 7101)}.items():
        for offset in offsets:
            two_hours.write(payloads(node_payload(node, H0 + offset, [])))
    two_hours.retention[10] = 1800
    two_hours.roll_up()
    assert two_hours.expire() > 0
    listed = two_hours.entities(EntityKind.NODE, span=Span(H0 + 600, H0 + 1200, 60))
    assert [entity.identity["node"] for entity in listed] == ["dot", "n1"]
