import threading

import pytest
from server_payloads import T0, payload

from cloudmon.server import maintenance
from cloudmon.storage.base import Span, StoreUpkeep, backend
from cloudmon.storage.model import EntityKind
from cloudmon.storage.sqlite import SqliteStorage


def test_upkeep_rolls_up_then_expires(post, storage, clock):
    for offset in range(0, 7200, 10):
        post(payload("n1", T0 + offset, [], cpu_cores=1.0))
        clock.now = T0 + offset + 5
    clock.now = T0 + 2 * 86400
    (node,) = storage.entities(EntityKind.NODE)
    if isinstance(storage, SqliteStorage):
        periods, deleted = maintenance.upkeep(storage)
        assert periods > 120 and deleted > 0
        # The 10 s samples are gone: a 10 s step is answered from the minutes' rollups, each
        # at the step of its start, a minute begun before the span at its first step. T0 is
        # 40 s into a minute: that minute holds 2 samples, the next (from T0 + 20) 6.
        assert T0 % 60 == 40
        (raw,) = storage.series([node], ["cpu_cores"], Span(T0, T0 + 20, 10, "sum"))
        assert raw["cpu_cores"] == [2.0, None, 6.0]
        (raw,) = storage.series([node], ["cpu_cores"], Span(T0 + 25, T0 + 85, 10, "sum"))
        assert raw["cpu_cores"] == [6.0, None, None, None, None, 6.0]
    else:  # the engine keeps its own retention: nothing rolled up, its 10 s samples kept
        assert not isinstance(storage, StoreUpkeep)
        (raw,) = storage.series([node], ["cpu_cores"], Span(T0, T0 + 20, 10, "sum"))
        assert raw["cpu_cores"] == [1.0, 1.0, 1.0]
    (node,) = storage.entities(EntityKind.NODE)
    (got,) = storage.series([node], ["cpu_cores"], Span(T0, T0 + 7190, 60, "sum"))
    assert got["cpu_cores"][1] == 6.0


@pytest.fixture
def sqlite_store(tmp_path, clock):
    store = SqliteStorage(tmp_path / "cloudmon.db", clock=clock)
    yield store
    store.close()


@pytest.mark.parametrize(
    ("task", "every"),
    [
        ("roll_up", {"every": 0.01}),
        ("checkpoint", {"every": 60, "checkpoint_every": 0.01}),
        ("keep_size", {"every": 60, "size_every": 0.01}),
    ],
)
def test_background_thread_runs_each_task_at_its_own_pace(sqlite_store, task, every):
    done = threading.Event()
    setattr(sqlite_store, task, lambda: done.set() or 0)
    stop = maintenance.start(sqlite_store, **every)
    assert done.wait(5)
    stop.set()


def test_only_a_store_that_keeps_its_own_data_gets_upkeep(storage):
    before = set(threading.enumerate())
    stop = maintenance.start(storage, every=60, checkpoint_every=60)
    started = {thread.name for thread in set(threading.enumerate()) - before}
    stop.set()
    if isinstance(storage, SqliteStorage):
        assert started == {"cloudmon-upkeep", "cloudmon-checkpoint", "cloudmon-size"}
    else:  # the engine keeps its own retention and durability
        assert started == set()
        assert not isinstance(storage, StoreUpkeep)


def test_worker_options_come_from_the_backend():
    assert backend("sqlite:///x.db").worker_options(threads=3) == {"autocheckpoint": False}
    assert backend("prometheus+http://127.0.0.1:9090").worker_options(threads=3) == {}
