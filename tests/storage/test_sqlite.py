import sqlite3
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from store_payloads import T0, Clock, node_payload, payloads

from cloudmon.storage import open_storage
from cloudmon.storage.base import Span
from cloudmon.storage.model import EntityKind
from cloudmon.storage.sqlite import SqliteStorage
from cloudmon.storage.sqlite.codec import pack, unpack
from cloudmon.storage.sqlite.connections import WAL_LIMIT
from cloudmon.storage.sqlite.schema import MIGRATIONS

values = st.lists(st.none() | st.floats(min_value=0, max_value=1.8e19), max_size=32)


@given(values)
def test_pack_round_trip(row):
    assert unpack(pack(row), len(row)) == row


def test_pack_keeps_only_present_values():
    assert len(pack([None] * 20 + [1.0])) == 4 + 8


def test_url_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = open_storage("sqlite:///data/a.db")
    absolute = open_storage(f"sqlite:///{tmp_path}/b.db")
    assert (tmp_path / "data" / "a.db").exists() and (tmp_path / "b.db").exists()
    relative.close()
    absolute.close()
    with pytest.raises(ValueError, match="unknown scheme"):
        open_storage("postgres://x")


def test_schema_version_and_wal(tmp_path):
    store = SqliteStorage(tmp_path / "s.db")
    assert store.schema_version() == len(MIGRATIONS)
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    store.close()


def test_reopening_keeps_data_and_migrates_once(tmp_path):
    store = SqliteStorage(tmp_path / "s.db")
    store.write(payloads(node_payload("n1", T0, [("a", "ns", 0.5)])))
    store.close()
    again = SqliteStorage(tmp_path / "s.db")
    assert [e.identity["node"] for e in again.entities(EntityKind.NODE)] == ["n1"]
    again.write(payloads(node_payload("n1", T0, [("a", "ns", 0.25)])))
    (ns,) = again.latest(again.entities(EntityKind.NAMESPACE), ["cpu_cores"])
    assert ns["metrics"] == {"cpu_cores": 0.25}
    again.close()


def test_newer_schema_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        SqliteStorage(tmp_path / "s.db")


READS_WHILE_WRITING = 5


def test_readers_run_beside_the_writer(tmp_path):
    """Readers in threads read while the writer writes, each read a whole answer: every
    reader reads at least READS_WHILE_WRITING times during the writes (the writes go on until
    they have), and never sees an error or a half-written bucket."""
    store = SqliteStorage(tmp_path / "s.db")
    store.write(payloads(node_payload("n1", T0, [("a", "ns", 1.0)])))
    errors, stop, writing = [], threading.Event(), threading.Event()
    reads_while_writing = [0, 0, 0]

    def read(at: int):
        try:
            while not stop.is_set():
                (cluster,) = store.entities(EntityKind.CLUSTER)
                (row,) = store.latest([cluster], ["node_count", "pod_count"])
                assert row["metrics"]["node_count"] >= 1
                assert row["metrics"]["pod_count"] == row["metrics"]["node_count"]
                reads_while_writing[at] += writing.is_set()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    readers = [threading.Thread(target=read, args=(at,)) for at in range(3)]
    for thread in readers:
        thread.start()
    writing.set()
    i = 0
    while min(reads_while_writing) < READS_WHILE_WRITING and i < 5000 and not errors:
        i += 1
        store.write(payloads(node_payload(f"n{i % 5}", T0 + 10 * i, [("a", "ns", 1.0)])))
    writing.clear()
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    assert min(reads_while_writing) >= READS_WHILE_WRITING, reads_while_writing
    store.close()


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_the_connections_of_a_process_share_one_page_cache_budget(tmp_path):
    store = SqliteStorage(tmp_path / "c.db", cache_mb=16)
    with store.db.writing() as conn:
        conn.execute("CREATE TABLE filler (v BLOB)")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)"
            " INSERT INTO filler SELECT randomblob(1000) FROM n"
        )
    before = _rss()

    def read() -> None:
        store.db.reader().execute("SELECT sum(length(v)) FROM filler").fetchone()

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Three connections each reading 40 MB: without the shared budget each keeps its pages.
    assert _rss() - before < 32 << 20
    store.close()


def test_two_stores_on_one_file_share_ids(tmp_path):
    one, two = SqliteStorage(tmp_path / "s.db"), SqliteStorage(tmp_path / "s.db")
    one.write(payloads(node_payload("n1", T0, [("a", "ns", 1.0)])))
    two.write(payloads(node_payload("n2", T0, [("c", "ns", 1.0)])))
    one.write(payloads(node_payload("n1", T0, [("b", "ns", 2.0)])))
    (ns,) = two.latest(two.entities(EntityKind.NAMESPACE), ["cpu_cores", "pod_count"])
    assert ns["metrics"] == {"cpu_cores": 3.0, "pod_count": 2}
    one.close()
    two.close()


def test_a_version_1_file_is_migrated(tmp_path):
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version=1")
    conn.close()
    store = SqliteStorage(tmp_path / "s.db", clock=lambda: T0 + 3600)
    assert store.schema_version() == len(MIGRATIONS) >= 2
    store.write(payloads(node_payload("n1", T0, [("a", "ns", 1.0)])))
    assert store.roll_up() > 0
    store.close()


def test_without_autocheckpoint_the_wal_waits_for_checkpoint(tmp_path):
    store = SqliteStorage(tmp_path / "s.db", autocheckpoint=False)
    main = tmp_path / "s.db"
    empty = main.stat().st_size
    for i in range(200):
        pods = [(f"p{i}-{j}", "ns", 0.5) for j in range(40)]
        store.write(payloads(node_payload(f"n{i}", T0, pods)))
    # Past SQLite's default autocheckpoint threshold of 1000 pages, yet none ran.
    assert (tmp_path / "s.db-wal").stat().st_size > 1000 * 4096
    assert main.stat().st_size == empty
    store.checkpoint()
    assert main.stat().st_size > 100 * empty
    wal = (tmp_path / "s.db-wal").stat().st_size
    store.write(payloads(node_payload("n0", T0 + 10, [("p0-0", "ns", 0.5)])))
    # Written again from its start, cut back to its limit: it counts in the store's size.
    assert (tmp_path / "s.db-wal").stat().st_size == min(wal, WAL_LIMIT)
    store.close()


def test_pods_with_nothing_left_in_any_resolution_are_forgotten(tmp_path):
    clock = Clock(T0)
    store = SqliteStorage(tmp_path / "s.db", clock=clock)
    store.write(payloads(node_payload("n1", T0, [("old", "ns", 1.0)])))
    clock.now = T0 + 80 * 86400
    store.write(payloads(node_payload("n1", clock.now, [("new", "ns", 1.0)])))
    store.roll_up()
    assert store.expire() > 0
    assert [pod.identity["uid"] for pod in store.entities(EntityKind.POD)] == ["new", "old"]
    clock.now = T0 + 91 * 86400
    store.roll_up()
    store.expire()
    assert [pod.identity["uid"] for pod in store.entities(EntityKind.POD)] == ["new"]
    containers = store.entities(EntityKind.CONTAINER)
    assert [c.identity["uid"] for c in containers] == ["new"]
    assert [n.identity["node"] for n in store.entities(EntityKind.NODE)] == ["n1"]
    store.write(payloads(node_payload("n1", clock.now, [("new", "ns", 2.0)])))
    assert store.latest(store.entities(EntityKind.POD), ("cpu_cores",))[0]["metrics"] == {
        "cpu_cores": 2.0
    }
    store.close()


CORES = {"node": 1.0, "cluster": 1.0, "pod": 0.5, "namespace": 0.5, "deployment": 0.5}


@pytest.mark.parametrize("kind", list(EntityKind))
def test_a_span_reaching_back_years_before_the_data(tmp_path, kind):
    # From a start no resolution covers, the raw samples are read from their first bucket,
    # not stepped through bucket by bucket from the start (which took minutes).
    store = SqliteStorage(tmp_path / "s.db", clock=Clock(T0 + 25))
    try:
        store.write(payloads(node_payload("n1", T0, [("a", "ns", 0.5)])))
        span = Span(T0 - 5 * 365 * 86400, T0 + 20, 86400, "max")
        (series,) = store.series(store.entities(kind), ("cpu_cores",), span)
    finally:
        store.close()
    assert [v for v in series["cpu_cores"] if v is not None] == [CORES.get(kind, 0.5 / 4)]
