"""Namespace, deployment and cluster sums: taken once a bucket is closed, summed at query time
until then, and the same either way, to the last bit."""

import pytest
from store_payloads import T0, Clock, node_payload, payloads

from cloudmon.storage.base import Span
from cloudmon.storage.sqlite import SqliteStorage
from cloudmon.storage.sqlite.sums import SUM_GRACE

GROUPS = ("namespace", "deployment", "cluster")
SPAN = Span(T0, T0 + 50, 10)


def awkward(i: int) -> float:
    return 1 / (i + 3) + 0.1  # sums of these depend on the order they are added in


@pytest.fixture
def clock():
    return Clock(T0 + 55)  # after what `fill` writes


@pytest.fixture
def store(tmp_path, clock):
    store = SqliteStorage(tmp_path / "s.db", clock=clock)
    yield store
    store.close()


def fill(store, namespaces=2):
    """Three nodes, six buckets, pods of some namespaces spread over the nodes."""
    for b in range(6):
        for n in range(3):
            pods = [(f"p{n}-{i}", f"ns{i % namespaces}", awkward(b + n + i)) for i in range(5)]
            store.write(payloads(node_payload(f"n{n}", T0 + 10 * b + n, pods, awkward(b * n))))


def answers(store):
    got = {}
    for kind in GROUPS:
        entities = store.entities(kind)
        got[kind] = (
            store.latest(
                entities, ("cpu_cores", "pod_count" if kind != "cluster" else "node_count")
            ),
            store.series(entities, ("cpu_cores",), SPAN),
        )
    return got


def kept_buckets(store) -> int:
    return store.db.reader().execute("SELECT count(DISTINCT bucket) FROM grp_sample").fetchone()[0]


@pytest.mark.parametrize("namespaces", [2, 5])  # their sums taken one by one, or all at once
def test_sums_kept_at_close_answer_exactly_as_those_taken_at_query_time(store, clock, namespaces):
    fill(store, namespaces)
    before = answers(store)
    assert kept_buckets(store) == 0
    clock.now = T0 + 60 + SUM_GRACE
    store.roll_up()
    assert kept_buckets(store) == 6
    assert answers(store) == before
    ns0 = before["namespace"][1][0]["cpu_cores"]
    assert ns0[0] == sum(awkward(n + i) for n in range(3) for i in range(5) if i % namespaces == 0)


def test_a_bucket_is_closed_only_after_the_grace(store, clock):
    fill(store)
    clock.now = T0 + 30 + SUM_GRACE  # buckets before T0 + 30 are closed
    store.roll_up()
    assert kept_buckets(store) == 3


def test_a_late_sample_counts_at_once_and_in_the_kept_sums_after(store, clock):
    fill(store)
    clock.now = T0 + 60 + SUM_GRACE
    store.roll_up()
    store.write(payloads(node_payload("n9", T0 + 5, [("late", "ns0", 100.0)], cpu_cores=50.0)))
    with_late = answers(store)
    assert with_late["namespace"][1][0]["cpu_cores"][0] > 100
    store.roll_up()
    assert answers(store) == with_late


def test_a_node_sending_a_closed_bucket_again_replaces_its_part(store, clock):
    fill(store)
    clock.now = T0 + 60 + SUM_GRACE
    store.roll_up()
    first = answers(store)["namespace"][1][1]["cpu_cores"][0]
    store.write(payloads(node_payload("n0", T0, [("p0-1", "ns1", 1000.0)])))  # p0-3 is gone
    expected = first - awkward(1) - awkward(3) + 1000.0
    assert answers(store)["namespace"][1][1]["cpu_cores"][0] == pytest.approx(expected)
    store.roll_up()
    assert answers(store)["namespace"][1][1]["cpu_cores"][0] == pytest.approx(expected)


def test_closing_steps_over_a_long_silence_at_once(store, clock):
    store.write(payloads(node_payload("n1", T0, [("a", "ns", 1.0)])))
    store.write(payloads(node_payload("n1", T0 + 86400, [("a", "ns", 2.0)])))
    clock.now = T0 + 86400 + 10 + SUM_GRACE
    store.roll_up()
    assert kept_buckets(store) == 2
    span = Span(T0, T0 + 86400, 86400 // 2)
    (series,) = store.series(store.entities("namespace"), ("cpu_cores",), span)
    assert [v for v in series["cpu_cores"] if v is not None] == [1.0, 2.0]
