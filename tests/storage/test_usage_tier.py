"""The embedded store's usage tier: each hour the upkeep rolls up is added to its pods' and
containers' daily sketches, once, whatever is rolled up again; the days go with the 1 h
rollups."""

import numpy as np
import pytest
from store_payloads import H0, Clock, payloads

from cloudmon.storage.base import RETENTION, Span
from cloudmon.storage.model import EntityKind
from cloudmon.storage.sqlite import SqliteStorage
from cloudmon.storage.sqlite.schema import MIGRATIONS
from cloudmon.storage.usage import ACCURACY, COUNTERS, Days

HOURS = 2
KINDS = (EntityKind.POD, EntityKind.CONTAINER)
MiB = 1 << 20


def cpu_of(minute: int, shift: float = 0.0) -> float:
    """A container's CPU in a minute: a day's cycle, some minutes idle."""
    return 0.0 if minute % 17 == 0 else round(0.2 + 0.1 * np.sin(minute / 9) + shift, 6)


def memory_of(minute: int) -> int:
    return (50_000 + 13 * minute) * 4096


def body(t: float, minute: int, shift: float = 0.0) -> dict:
    cpu = cpu_of(minute, shift)
    container = {
        "id": "c1",
        "name": "app",
        "cpu_cores": cpu,
        "memory_working_set_bytes": memory_of(minute),
        "cpu_periods_total": int(t // 10) * 100,
        "cpu_throttled_periods_total": int(t // 10) * 7,
        "memory_oom_kills_total": 0,
    }
    pod = {
        "uid": "u1",
        "name": "web-1",
        "namespace": "shop",
        "workload_kind": "Deployment",
        "workload": "web",
        "cpu_cores": cpu + 0.001,
        "memory_working_set_bytes": memory_of(minute) + 4096,
        "containers": [container],
    }
    return {
        "schema": 1,
        "node": "n1",
        "timestamp": t,
        "interval": 10.0,
        "node_info": {"cpu_count": 4},
        "node_metrics": {"cpu_cores": 1.0},
        "pods": [pod],
    }


@pytest.fixture
def store(tmp_path):
    clock = Clock(H0)
    store = SqliteStorage(tmp_path / "store.db", clock=clock)
    store.clock = clock
    yield store
    store.close()


def write_minutes(store, minutes, shift: float = 0.0) -> None:
    for minute in minutes:
        for second in range(1, 60, 10):  # the same figures all minute: its average is them
            store.clock.now = max(store.clock.now, H0 + 60 * minute + second)
            store.write(payloads(body(H0 + 60 * minute + second, minute, shift)))


def container_days(store) -> Days:
    (container,) = store.entities(EntityKind.CONTAINER)
    ids, days = store.usage(EntityKind.CONTAINER, H0, H0 + HOURS * 3600)
    assert ids == [container.id]
    return days


def test_hours_rolled_up_make_the_days_sketch(store):
    write_minutes(store, range(HOURS * 60 + 5))
    store.clock.now = H0 + HOURS * 3600 + 400
    store.roll_up()
    days = container_days(store)
    cpu = np.array([cpu_of(minute) for minute in range(HOURS * 60)])
    assert days.points(0).tolist() == [HOURS * 60] and days.points(1).tolist() == [HOURS * 60]
    qs = (0.5, 0.95, 0.99)
    for found, truth in zip(
        days.quantiles(0, qs)[0],
        np.percentile(cpu, np.array(qs) * 100, method="lower"),
        strict=True,
    ):
        assert found == pytest.approx(truth, rel=ACCURACY)
    assert days.maxima[0].tolist() == [pytest.approx(cpu.max()), memory_of(HOURS * 60 - 1)]
    # The counters' increase over the hours, from their first sample to their last.
    increases = dict(zip(COUNTERS, days.increases()[0].tolist(), strict=True))
    samples = HOURS * 360 - 1
    assert increases["cpu_periods_total"] == 100 * samples
    assert increases["cpu_throttled_periods_total"] == 7 * samples
    assert increases["memory_oom_kills_total"] == 0
    # What the store answers of the same minutes, sketched: the same.
    (container,) = store.entities(EntityKind.CONTAINER)
    span = Span(H0, H0 + HOURS * 3600 - 1, 60, "avg")
    answered = store.series([container], ["cpu_cores"], span)[0]["cpu_cores"]
    minutes = np.array([[value, np.nan] for value in answered])
    counters = np.full((len(answered), len(COUNTERS), 2), np.nan)
    alike = Days.of_minutes(np.zeros(len(answered), np.int64), minutes, counters, 1, 0)
    assert days.key[days.metric == 0].tolist() == alike.key[alike.metric == 0].tolist()
    (pod,) = store.entities(EntityKind.POD)
    assert store.usage(EntityKind.POD, H0, H0)[0] == [pod.id]


def test_an_hour_rolled_up_again_is_counted_once(store):
    write_minutes(store, range(HOURS * 60 + 5))
    store.clock.now = H0 + HOURS * 3600 + 400
    store.roll_up()
    # Late samples into the first hour: it is rolled up again, its day made again.
    write_minutes(store, range(10, 20), shift=2.0)
    store.upkeep.roll_up(wait_for_late=False)
    days = container_days(store)
    assert days.points(0).tolist() == [HOURS * 60]
    assert days.maxima[0, 0] == pytest.approx(2.0 + max(cpu_of(m) for m in range(10, 20)))
    # A stop half way through an hour: it is rolled up again whole.
    store.db.transaction(
        lambda conn: conn.execute("INSERT INTO rollup_dirty VALUES (3600, ?)", (H0,))
    )
    store.roll_up()
    again = container_days(store)
    assert again.points(0).tolist() == [HOURS * 60]
    assert again.key.tolist() == days.key.tolist() and again.count.tolist() == days.count.tolist()


def test_days_go_with_the_hour_rollups(store):
    write_minutes(store, range(65))
    store.clock.now = H0 + 3600 + 400
    store.roll_up()
    assert container_days(store).size == 1
    store.clock.now = H0 + RETENTION[3600] + 86400 + 3600
    store.expire()
    assert store.usage(EntityKind.CONTAINER, H0, H0 + 3600)[0] == []


def assert_same(days: Days, expected: Days) -> None:
    for name in Days.__dataclass_fields__:  # NaN (none) equal to NaN
        np.testing.assert_array_equal(getattr(days, name), getattr(expected, name), name)


def test_hours_rolled_up_before_the_tier_are_sketched_from_their_minutes(tmp_path):
    """A file of the version before the usage tier (its minutes and hours rolled up, no
    sketch), opened by this cloudmon: the upkeep adds its hours from their 1 min rollups, an
    hour a round, each once, as if it had kept sketches all along."""
    path, clock = tmp_path / "store.db", Clock(H0)
    store = SqliteStorage(path, clock=clock)
    store.clock = clock
    write_minutes(store, range(HOURS * 60 + 5))
    clock.now = H0 + HOURS * 3600 + 400
    store.roll_up()
    made = {kind: store.usage(kind, H0, H0 + HOURS * 3600) for kind in KINDS}

    def before_the_tier(conn) -> None:
        conn.execute("DROP TABLE usage_backfill")
        conn.execute("DROP TABLE usage_day")
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 2}")

    store.db.transaction(before_the_tier)
    store.close()
    store = SqliteStorage(path, clock=clock)
    try:
        assert store.usage(EntityKind.CONTAINER, H0, H0 + HOURS * 3600)[0] == []
        backfilled = [store.upkeep.backfill_usage() for _ in range(HOURS + 1)]
        assert backfilled == [1] * HOURS + [0]
        assert store.db.reader().execute("SELECT * FROM usage_backfill").fetchall() == []
        for kind in KINDS:
            ids, days = store.usage(kind, H0, H0 + HOURS * 3600)
            assert ids == made[kind][0]
            assert_same(days, made[kind][1])
        # Hours a day holds already are kept as they are, not counted again.
        store.db.transaction(
            lambda conn: conn.execute(
                "INSERT INTO usage_backfill VALUES (?, ?)", (H0, H0 + HOURS * 3600)
            )
        )
        for _ in range(HOURS):
            store.roll_up()
        ids, days = store.usage(EntityKind.CONTAINER, H0, H0 + HOURS * 3600)
        assert_same(days, made[EntityKind.CONTAINER][1])
    finally:
        store.close()


def test_a_new_store_has_nothing_to_backfill(store):
    assert store.db.reader().execute("SELECT * FROM usage_backfill").fetchall() == []
