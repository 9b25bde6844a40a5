"""Past a bound of waiting writes, in any process, or after waiting too long for a thread,
ingest answers 503 with Retry-After."""

import errno
import fcntl
import json
import subprocess
import sys
import threading
import time

import pytest
from server_payloads import T0, Clock, payload, pod

from cloudmon import payload as wire
from cloudmon.server.app import create_app
from cloudmon.server.ingest import ARRIVED, MAX_WAIT
from cloudmon.storage.sqlite import SqliteStorage

HOLD_SLOTS = """
import fcntl, sys
queue = open(sys.argv[1], "a+b")
fcntl.lockf(queue, fcntl.LOCK_EX | fcntl.LOCK_NB, 2, 0)
print("held", flush=True)
sys.stdin.read()
"""


def _body(node: str) -> bytes:
    return json.dumps(payload(node, T0, [pod(f"{node}-p", "p", "ns")])).encode()


@pytest.fixture
def store(tmp_path):
    storage = SqliteStorage(tmp_path / "cloudmon.db", clock=Clock(T0 + 25), max_waiting=2)
    yield storage
    storage.close()


@pytest.fixture
def client(store):
    return create_app({"CLOUDMON_STORAGE": store, "CLOUDMON_NOW": Clock(T0 + 25)}).test_client()


def _post(client, node: str):
    return client.post("/api/ingest", data=_body(node), content_type="application/json")


def test_writes_past_the_bound_are_shed_while_the_writer_is_busy(store, client, tmp_path):
    writer = open(tmp_path / "cloudmon.db-writer", "a+b")  # noqa: SIM115
    fcntl.flock(writer, fcntl.LOCK_EX)  # another process is writing, for as long as we like
    outcomes = []
    waiting = [
        threading.Thread(target=lambda n=n: outcomes.append(_post(client, n).status_code))
        for n in ("w1", "w2")
    ]
    try:
        for thread in waiting:
            thread.start()
        deadline = time.monotonic() + 10
        while not all(slot.locked() for slot in store.db.slots):
            assert time.monotonic() < deadline, "the two writes never queued"
            time.sleep(0.01)
        # The writer stays busy until the end: answered before that, the third write was
        # shed, not queued behind it.
        shed = []
        third = threading.Thread(target=lambda: shed.append(_post(client, "shed")))
        waiting.append(third)
        third.start()
        third.join(timeout=30)
        assert shed, "the third write queued instead of being shed"
        answer = shed[0]
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "5"
        assert "writes are waiting" in answer.get_json()["error"]
    finally:
        fcntl.flock(writer, fcntl.LOCK_UN)
        writer.close()
        for thread in waiting:
            thread.join()
    assert outcomes == [200, 200]
    assert _post(client, "after").status_code == 200


def test_writes_waiting_in_other_processes_count(store, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SLOTS, str(tmp_path / "cloudmon.db-queue")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(OSError) as refused:
            store.write(wire.decode(_body("n1")))
        assert refused.value.errno == errno.EAGAIN
    finally:
        holder.communicate("")
    assert store.write(wire.decode(_body("n1"))) == 2


def test_a_request_that_waited_too_long_for_a_thread_is_shed(client, store):
    late = {ARRIVED: time.monotonic() - MAX_WAIT - 0.5}
    answer = client.post(
        "/api/ingest", data=_body("late"), content_type="application/json", environ_base=late
    )
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert "overloaded" in answer.get_json()["error"]
    assert store.entities("node") == []
    on_time = {ARRIVED: time.monotonic()}
    answer = client.post(
        "/api/ingest", data=_body("on-time"), content_type="application/json", environ_base=on_time
    )
    assert answer.status_code == 200


def test_a_late_request_is_shed_before_its_body_is_decoded(client, store):
    """Shedding saves the work a request would cost: a late one is answered 503 before its
    body is decoded, so a body that is not even JSON gets 503, not 400."""
    late = {ARRIVED: time.monotonic() - MAX_WAIT - 0.5}
    answer = client.post(
        "/api/ingest", data=b"{not json", content_type="application/json", environ_base=late
    )
    assert answer.status_code == 503
    assert "overloaded" in answer.get_json()["error"]
    assert store.entities("node") == []
