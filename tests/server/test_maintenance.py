import threading

from server_payloads import T0, payload

from cloudmon.server import maintenance
from cloudmon.storage.base import EntityKind, Span


def test_expire_once_keeps_the_retention(post, storage, clock):
    clock.now = T0 + 7210
    for offset in (0, 3600, 7200):
        post(payload("n1", T0 + offset, [], cpu_cores=1.0))
    assert maintenance.expire_once(storage, now=T0 + 7200, retention=3600) > 0
    (node,) = storage.entities(EntityKind.NODE)
    (got,) = storage.series([node], ["cpu_cores"], Span(T0, T0 + 7200, 3600, "sum"))
    assert got["cpu_cores"] == [None, 1.0, 1.0]


def test_background_thread_expires(post, storage):
    post(payload("n1", T0, [], cpu_cores=1.0))
    done = threading.Event()
    real = storage.expire

    def expire(before):
        deleted = real(before)
        done.set()
        return deleted

    storage.expire = expire
    stop = maintenance.start(storage, lambda: T0 + 10**6, retention=60, every=0.01)
    assert done.wait(5)
    stop.set()
    (node,) = storage.entities(EntityKind.NODE)
    assert storage.latest([node], ["cpu_cores"])[0]["metrics"] == {"cpu_cores": None}
