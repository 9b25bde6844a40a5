"""The embedded store within --retention-size: the oldest data deleted in order, the file
kept from growing (and shrunk when over), the tiers measured, each episode logged once."""

import logging
import sqlite3

import pytest
from store_payloads import H0, Clock, node_payload, payloads

from cloudmon.sizes import parse_size
from cloudmon.storage.base import BUCKET, Span
from cloudmon.storage.model import EntityKind
from cloudmon.storage.sqlite import SqliteStorage, sealed
from cloudmon.storage.sqlite.connections import WAL_LIMIT
from cloudmon.storage.sqlite.size import HIGH, LOW

PODS = 40
GROWING_HOURS = 7  # written into a store of 2.5 MiB: past it, sealed as they are


def write_minutes(store, first: int, minutes: int) -> None:
    for i in range(first * 6, (first + minutes) * 6):
        pods = [(f"p{j}", "ns", j / 100 + i / 7) for j in range(PODS)]
        store.write(payloads(node_payload("n1", H0 + 10 * i + 1, pods, cpu_cores=i / 3)))


def oldest(store, table: str, res: int = BUCKET) -> int | None:
    """The oldest bucket of a table's resolution, sealed or not."""
    return sealed.held(store.db.reader(), table, res)[0]


@pytest.fixture
def store(tmp_path):
    """Two hours of a node of PODS pods, rolled up but for the last minutes of raw samples."""
    clock = Clock(H0)
    store = SqliteStorage(tmp_path / "store.db", clock=clock)
    write_minutes(store, 0, 120)
    clock.now = H0 + 7200 + 90
    store.roll_up()
    write_minutes(store, 120, 2)  # not rolled up: never deleted
    store.db.checkpoint(truncate=True)  # the WAL's bytes counted as the deletions leave it
    yield store
    store.close()


def test_sizes_as_prometheus_writes_them():
    assert parse_size("8GiB") == parse_size("8GB") == 8 << 30
    assert parse_size("500MiB") == parse_size("500mb") == 500 << 20
    assert parse_size("1.5 TiB") == 3 << 39
    assert parse_size("2048KB") == 2 << 20
    for bad in ("8", "8G", "8Gi", "-1GiB", "GiB", "8 parsecs", "512KiB"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_no_size_deletes_nothing(store):
    assert store.keep_size() == 0
    assert oldest(store, "pod_sample") == H0


def test_raw_samples_rolled_up_go_first_and_the_store_ends_under_the_mark(store, caplog):
    used = store.db.footprint().used
    store.size.size = int(used / 0.97)  # over HIGH, not by much
    raw = oldest(store, "pod_sample")
    with caplog.at_level(logging.INFO, logger="cloudmon.storage.sqlite.size"):
        deleted = store.keep_size()
        assert store.keep_size() == 0  # under the mark: the next round deletes nothing
    assert deleted > 0
    assert store.db.footprint().used <= LOW * store.size.size
    assert oldest(store, "pod_sample") > raw
    # Rollups untouched while rolled-up raw samples remain.
    assert oldest(store, "pod_rollup", 60) == oldest(store, "pod_rollup", 3600) == H0
    assert store.stats()["size_deleted_rows"] == deleted
    starts = [r for r in caplog.records if "deleting the oldest data" in r.getMessage()]
    ends = [r for r in caplog.records if "within its --retention-size" in r.getMessage()]
    assert len(starts) == len(ends) == 1


def test_then_minutes_then_hours_never_what_is_not_rolled_up(store):
    store.size.size = 1 << 16  # less than what may not go
    store.keep_size()
    reader = store.db.reader()
    rolled = dict(reader.execute("SELECT res, done FROM rollup_state"))
    # Every raw sample left is one whose minute is not rolled up yet; the minutes and
    # hours went too, down to what is left.
    assert oldest(store, "pod_sample") == rolled[60] == H0 + 7200
    (count,) = reader.execute("SELECT count(DISTINCT bucket) FROM pod_sample").fetchone()
    assert count == 12
    assert oldest(store, "pod_rollup", 60) is None
    assert oldest(store, "pod_rollup", 3600) is None
    # Nothing more may go: it says so, and the next round does not try again and again.
    assert store.keep_size() == 0


def test_rollups_go_oldest_first_once_raw_samples_are_gone(store):
    footprint = store.db.footprint()
    reader = store.db.reader()
    raw = sum(
        reader.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("node_sample", "pod_sample", "ctr_sample", "grp_sample")
    )
    (raw_sealed,) = reader.execute(
        "SELECT coalesce(sum((last - first) / 10 + 1), 0) FROM chunk WHERE res = 10"
    ).fetchone()
    raw += raw_sealed
    # Half of the 1 min rollups' pages over the mark, once all raw samples went (and the
    # WAL is cut to nothing).
    figures = store.size.measure()
    pages = footprint.used - footprint.wal - figures["bytes_raw"] - figures["bytes_1m"] / 2
    store.size.size = int(pages / LOW)
    store.keep_size()
    hour = oldest(store, "pod_rollup", 3600)
    minute = oldest(store, "pod_rollup", 60)
    assert hour == H0  # the hours are all there
    assert H0 < minute < H0 + 7200
    (left,) = store.db.reader().execute("SELECT count(*) FROM pod_sample").fetchone()
    assert left == 12 * (PODS)  # the minutes not rolled up
    assert store.stats()["size_deleted_rows"] > raw - 12 * (PODS + 1 + PODS + 2)


def test_the_file_stops_growing_at_the_size(tmp_path):
    clock = Clock(H0)
    store = SqliteStorage(tmp_path / "store.db", clock=clock)
    size = 5 << 19
    store.size.size = size
    largest = 0
    try:
        for hour in range(GROWING_HOURS):
            for minutes in range(0, 60, 2):
                write_minutes(store, hour * 60 + minutes, 2)
                clock.now = H0 + (hour * 60 + minutes + 2) * 60 + 30  # the last one not due
                store.roll_up()
                store.keep_size()
                store.checkpoint()
                largest = max(largest, store.db.footprint().on_disk)
        assert store.stats()["size_deleted_rows"] > 0
        assert largest <= size
        # The newest samples are all there, the oldest are gone.
        assert oldest(store, "pod_sample") > H0 + 3600  # sealed spans hold the rest
        newest = sealed.held(store.db.reader(), "pod_sample", BUCKET)[1]
        assert newest == H0 + GROWING_HOURS * 3600 - 10
    finally:
        store.close()


def test_a_wal_past_its_limit_is_cut_though_far_from_the_size(tmp_path):
    # As a server's workers write: checkpoints left to the master.
    store = SqliteStorage(tmp_path / "store.db", clock=Clock(H0), autocheckpoint=False)
    try:
        store.size.size = 1 << 40
        write_minutes(store, 0, 30)
        assert store.db.footprint().wal > WAL_LIMIT
        assert store.keep_size() == 0
        assert store.db.footprint().wal == 0
    finally:
        store.close()


def test_a_new_file_over_the_size_shrinks(store, tmp_path):
    before = (tmp_path / "store.db").stat().st_size
    store.size.size = int(before * 0.6)
    store.keep_size()
    store.checkpoint()
    after = store.db.footprint()
    assert after.on_disk <= HIGH * store.size.size
    assert (tmp_path / "store.db").stat().st_size < 0.7 * before


def test_an_old_file_over_the_size_stops_growing_and_says_it_cannot_shrink(tmp_path, caplog):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # made as before: auto_vacuum NONE
        conn.execute("CREATE TABLE filler (x)")
    clock = Clock(H0)
    store = SqliteStorage(path, clock=clock)
    try:
        write_minutes(store, 0, 120)
        clock.now = H0 + 7200 + 90
        store.roll_up()
        store.checkpoint()
        size = path.stat().st_size
        store.size.size = int(size * 0.6)
        with caplog.at_level(logging.WARNING, logger="cloudmon.storage.sqlite.size"):
            store.keep_size()
            store.keep_size()
        assert store.db.footprint().used <= LOW * store.size.size
        cannot = [r for r in caplog.records if "cannot shrink" in r.getMessage()]
        assert len(cannot) == 1
        write_minutes(store, 120, 10)
        store.checkpoint()
        assert path.stat().st_size == size  # written into free pages
    finally:
        store.close()


def test_tiers_are_measured_and_add_up(store):
    figures = store.size.measure()
    footprint = store.db.footprint()
    tiers = figures["bytes_raw"] + figures["bytes_1m"] + figures["bytes_1h"]
    assert 0.8 * (footprint.used - footprint.wal) < tiers <= footprint.used - footprint.wal
    assert figures["bytes_1h"] < figures["bytes_1m"] / 10
    assert store.size.measure() is None  # measured a moment ago
    assert store.stats()["bytes_raw"] == figures["bytes_raw"]


def group_rollups(store, res: int) -> list:
    return sealed.bucket_rows(store.db.reader(), "grp_rollup", res, H0 // res * res)


def test_a_late_sample_of_a_minute_deleted_for_size_leaves_its_rollups_whole(store):
    store.size.size = int(store.db.footprint().used / 0.97)
    store.keep_size()
    assert oldest(store, "pod_sample") > H0  # the first minute has lost raw samples
    kept = oldest(store, "pod_sample") // 60 * 60 + 60  # the first minute with all its rows
    minute, hour = group_rollups(store, 60), group_rollups(store, 3600)
    # A node that lagged sends its sample of that minute: stored, but the minute is not
    # rolled up again from it alone, which would leave its groups with its share only.
    store.write(payloads(node_payload("n2", H0 + 1, [("q1", "ns", 5.0)], cpu_cores=3.0)))
    store.roll_up()
    store.roll_up()
    assert group_rollups(store, 60) == minute
    assert group_rollups(store, 3600) == hour
    # A minute whose rows are all there is rolled up again with it.
    store.write(payloads(node_payload("n2", kept + 1, [("q1", "ns", 500.0)], cpu_cores=3.0)))
    store.roll_up()
    store.roll_up()
    namespaces = store.entities(EntityKind.NAMESPACE)
    raw = store.series(namespaces, ("cpu_cores",), Span(kept, kept + 50, 10, "max"))
    rolled = store.series(namespaces, ("cpu_cores",), Span(kept, kept + 50, 60, "max"))
    assert raw[0]["cpu_cores"][0] > 500.0  # n1's share and n2's
    assert rolled[0]["cpu_cores"] == [raw[0]["cpu_cores"][0]]
