"""SqliteStorage on a full disk: every writer of a failed batch is told, nothing is half stored."""

import errno
import json
import threading

import pytest
from fixtures.tmpfs import small_tmpfs
from server_payloads import T0, Clock, payload, pod

from cloudmon import payload as wire
from cloudmon.storage.model import EntityKind
from cloudmon.storage.sqlite import SqliteStorage


def _payloads(node: str) -> list:
    pods = [
        pod(f"{node}-{i}", f"{node}-{i}", "full", memory_working_set_bytes=i) for i in range(50)
    ]
    return wire.decode(json.dumps(payload(node, T0, pods)).encode())


@pytest.fixture
def full_store(tmp_path):
    with small_tmpfs(tmp_path / "store", "1m") as directory:
        store = SqliteStorage(directory / "cloudmon.db", clock=Clock(T0 + 25))
        try:
            yield store
        finally:
            store.close()


def test_concurrent_writers_on_a_full_disk_each_get_enospc_or_are_stored(full_store):
    stored, samples = set(), None
    for number in range(400):
        try:
            samples = full_store.write(_payloads(f"fill-{number}"))
        except OSError as error:
            assert error.errno == errno.ENOSPC
            break
        stored.add(f"fill-{number}")
    else:
        pytest.fail("the disk never filled up")

    outcomes = {}

    def write(node: str) -> None:
        try:
            outcomes[node] = full_store.write(_payloads(node))
        except OSError as error:
            outcomes[node] = error.errno

    threads = [threading.Thread(target=write, args=(f"late-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert samples > 50
    assert set(outcomes.values()) <= {errno.ENOSPC, samples}, outcomes
    assert len(outcomes) == len(threads)
    stored |= {node for node, outcome in outcomes.items() if outcome == samples}
    nodes = {entity.identity["node"] for entity in full_store.entities(EntityKind.NODE)}
    assert nodes == stored
    pods = full_store.entities(EntityKind.POD)
    assert len(pods) == 50 * len(stored)
