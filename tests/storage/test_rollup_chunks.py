"""SQLite rolls a period up a chunk of entities per transaction, so that ingest never waits
for a whole period: nothing is lost to a sample arriving meanwhile or to a stop halfway."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_payloads import H0, Clock, node_payload, payloads

from cloudmon.storage.base import Span
from cloudmon.storage.model import EntityKind
from cloudmon.storage.sqlite import SqliteStorage, sealed, upkeep
from cloudmon.storage.sqlite.upkeep import Upkeep

PODS = 12
SPAN = Span(H0, H0 + 110, 60, "max")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(upkeep, "_ROLLUP_CHUNK", 24)  # of 6 rows a minute: three chunks of pods
    store = SqliteStorage(tmp_path / "s.db", clock=Clock(H0 + 300))
    for b in range(12):
        pods = [(f"p{i:02d}", "ns", float(i + b)) for i in range(PODS)]
        store.write(payloads(node_payload("n1", H0 + 10 * b + 1, pods)))
    yield store
    store.close()


def pod_maxima(store):
    pods = store.entities(EntityKind.POD)
    return [series["cpu_cores"] for series in store.series(pods, ("cpu_cores",), SPAN)]


def raw_maxima():
    return [[float(i + 5), float(i + 11)] for i in range(PODS)]


def test_chunks_roll_up_every_entity(store):
    assert pod_maxima(store) == raw_maxima()  # from raw samples: the minutes are open
    assert store.roll_up() == 4  # the minutes finished by H0 + 240, the last two empty
    assert store.resolution(SPAN) == 60
    assert pod_maxima(store) == raw_maxima()


def test_a_sample_arriving_between_chunks_is_rolled_up(store, monkeypatch):
    summarise, transaction = Upkeep._summarise, store.db.transaction
    chunks, late = [], payloads(node_payload("n2", H0 + 1, [("p00", "ns", 100.0)]))

    def counting(self, conn, res, source, period, table, ids):
        summarise(self, conn, res, source, period, table, ids)
        if table == "pod_sample":
            chunks.append(ids)

    def then_a_write(work):
        result = transaction(work)
        if len(chunks) == 1 and late:  # between the first chunk of pods and the next
            store.write(late)
            late.clear()
        return result

    monkeypatch.setattr(Upkeep, "_summarise", counting)
    monkeypatch.setattr(store.db, "transaction", then_a_write)
    store.roll_up()
    assert not late and len(chunks) > 1
    monkeypatch.undo()
    store.roll_up()  # the round that finds the late write
    store.roll_up()  # the next, which finds none since: the minute rolled up again
    assert pod_maxima(store)[0] == [100.0, 11.0]


def test_a_period_taking_late_samples_is_rolled_up_again_once_they_stop(store):
    store.roll_up()
    for b in range(6):  # a backlog arriving, one sample of the first minute a round
        store.write(payloads(node_payload("n1", H0 + 10 * b + 2, [("p00", "ns", 50.0 + b)])))
        store.roll_up()
        assert pod_maxima(store)[0] == [5.0, 11.0]  # the minute waits for the rest
    store.roll_up()  # a round without late samples: the minute rolled up again
    assert pod_maxima(store)[0] == [55.0, 11.0]


def test_a_period_taking_late_samples_for_long_is_rolled_up_again_anyway(store):
    store.roll_up()
    for b in range(3):  # a late sample every round, rounds half a minute's LATE_WAIT apart
        store.write(payloads(node_payload("n1", H0 + 10 * b + 2, [("p00", "ns", 50.0 + b)])))
        store.roll_up()
        store.upkeep._clock.now += upkeep.LATE_WAIT[60] / 2
    assert pod_maxima(store)[0] == [52.0, 11.0]  # the third round: it had waited long enough


def test_a_period_left_half_done_is_done_again(store, monkeypatch):
    summarise = Upkeep._summarise

    def stopping(self, conn, res, source, period, table, ids):
        summarise(self, conn, res, source, period, table, ids)
        if table == "pod_sample" and ids[0] > 0:
            raise KeyboardInterrupt  # the process stops after the first chunks

    monkeypatch.setattr(Upkeep, "_summarise", stopping)
    with pytest.raises(KeyboardInterrupt):
        store.roll_up()
    monkeypatch.undo()
    store.roll_up()
    store.retention[10] = 60  # the raw samples gone: the answer is the rollups'
    store.expire()
    assert store.resolution(Span(H0, H0 + 110, 10)) == 60
    assert pod_maxima(store) == raw_maxima()


def rollups(store) -> set:
    """Every rollup row the store keeps, sealed or not."""
    conn = store.db.reader()
    found = set()
    for table in ("node_rollup", "pod_rollup", "ctr_rollup", "grp_rollup"):
        for res in (60, 3600):
            oldest, newest = sealed.held(conn, table, res)
            if oldest is not None:
                for bucket in range(oldest, newest + res, res):
                    found |= {
                        (table, res, bucket, eid, v)
                        for eid, v in sealed.bucket_rows(conn, table, res, bucket)
                    }
    return found


LATE = st.tuples(
    st.integers(0, 2),  # node
    st.integers(0, 17),  # bucket
    st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["a", "b"]), st.integers(0, 9))),
)


@settings(max_examples=25, deadline=None)
@given(late=st.lists(LATE, min_size=1, max_size=8))
def test_late_samples_roll_up_again_only_what_they_changed_as_a_whole_roll_up_would(
    tmp_path_factory, late
):
    """Three nodes, three minutes rolled up to the hour; then late samples, again, with pods
    that come, go and change namespace: their entities rolled up again give what rolling
    everything up afresh gives."""
    store = SqliteStorage(tmp_path_factory.mktemp("s") / "s.db", clock=Clock(H0 + 7200))
    try:
        for b in range(18):
            for n in range(3):
                pods = [(f"p{n}{i}", "ab"[i % 2], float(i + b + n)) for i in range(4)]
                store.write(payloads(node_payload(f"n{n}", H0 + 10 * b + 1, pods)))
        store.roll_up()
        for node, bucket, pods in late:
            unique = {f"p{node}{i}": (f"p{node}{i}", ns, float(v)) for i, ns, v in pods}
            store.write(payloads(node_payload(f"n{node}", H0 + 10 * bucket + 2, unique.values())))
        marked = store.db.reader().execute("SELECT count(*) FROM rollup_stale").fetchone()[0]
        assert marked > 0  # only these are rolled up again
        store.roll_up()  # the round that finds the late writes
        store.roll_up()  # the next, which finds none since: their periods rolled up again
        kept = rollups(store)
        with store.db.writing() as conn:
            for table in ("node_rollup", "pod_rollup", "ctr_rollup", "grp_rollup"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("DELETE FROM chunk WHERE res > 10")
            conn.execute("DELETE FROM rollup_state")
        store.roll_up()
        assert kept == rollups(store)
    finally:
        store.close()


def test_an_hour_waits_for_the_late_minutes_within_it(tmp_path):
    clock = Clock(H0 + 7200)
    store = SqliteStorage(tmp_path / "s.db", clock=clock)

    def late(timestamp, cores):
        store.write(payloads(node_payload("n1", timestamp, [], cpu_cores=cores)))
        store.roll_up()

    try:
        store.write(payloads(node_payload("n1", H0 + 1, [], cpu_cores=1.0)))
        store.roll_up()
        late(H0 + 11, 2.0)
        clock.now += upkeep.LATE_WAIT[3600]
        late(H0 + 61, 3.0)  # the hour has waited long enough, the minute just begun to
        store.roll_up()
        hour = Span(H0, H0 + 3590, 3600, "max")
        assert store.resolution(hour) == 3600
        nodes = store.entities(EntityKind.NODE)
        assert store.series(nodes, ("cpu_cores",), hour)[0]["cpu_cores"] == [3.0]
    finally:
        store.close()
