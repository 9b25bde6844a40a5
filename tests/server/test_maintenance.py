import threading

from server_payloads import T0, payload

from cloudmon.server import maintenance
from cloudmon.storage.base import Span
from cloudmon.storage.model import EntityKind


def test_upkeep_rolls_up_then_expires(post, storage, clock):
    for offset in range(0, 7200, 10):
        post(payload("n1", T0 + offset, [], cpu_cores=1.0))
        clock.now = T0 + offset + 5
    clock.now = T0 + 2 * 86400
    periods, deleted = maintenance.upkeep(storage)
    assert periods > 120 and deleted > 0
    (node,) = storage.entities(EntityKind.NODE)
    (got,) = storage.series([node], ["cpu_cores"], Span(T0, T0 + 7190, 60, "sum"))
    assert got["cpu_cores"][1] == 6.0


def test_background_thread_runs_upkeep(storage):
    done = threading.Event()
    storage.roll_up = lambda: done.set() or 0
    stop = maintenance.start(storage, every=0.01)
    assert done.wait(5)
    stop.set()


def test_background_thread_runs_checkpoints(storage):
    done = threading.Event()
    storage.checkpoint = done.set
    stop = maintenance.start(storage, every=60, checkpoint_every=0.01)
    assert done.wait(5)
    stop.set()
