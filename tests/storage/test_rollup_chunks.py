"""SQLite rolls a period up a chunk of entities per transaction, so that ingest never waits
for a whole period: nothing is lost to a sample arriving meanwhile or to a stop halfway."""

import pytest
from store_payloads import H0, Clock, node_payload, payloads

from cloudmon.storage.base import Span
from cloudmon.storage.model import EntityKind
from cloudmon.storage.sqlite import SqliteStorage, upkeep
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

    def counting(self, conn, res, source, period, table, ids=(0, 1 << 63)):
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
    store.roll_up()
    assert pod_maxima(store)[0] == [100.0, 11.0]


def test_a_period_left_half_done_is_done_again(store, monkeypatch):
    summarise = Upkeep._summarise

    def stopping(self, conn, res, source, period, table, ids=(0, 1 << 63)):
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
