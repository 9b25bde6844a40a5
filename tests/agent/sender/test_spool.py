"""The spools: FIFO order, the bound, and (on disk) restarts, crashes and damaged files."""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from sender_support import FakeClock, IngestServer, payload

from cloudmon.agent.sender import Sender
from cloudmon.agent.spool import DiskSpool, MemorySpool, default_bound

UNLIMITED = 1 << 40


@pytest.fixture(params=["memory", "disk"])
def make_spool(request, tmp_path):
    opened = []

    def make(bound: int):
        spool = MemorySpool(bound) if request.param == "memory" else DiskSpool(str(tmp_path), bound)
        opened.append(spool)
        return spool

    yield make
    for spool in opened:
        spool.close()


def timestamps(items: list[bytes]) -> list[float]:
    return [json.loads(item)["timestamp"] for item in items]


def everything(spool) -> list[bytes]:
    return spool.oldest(UNLIMITED, UNLIMITED)


def test_default_bound_is_an_hour_of_samples():
    assert default_bound(10) == 360
    assert default_bound(7) == 515
    assert default_bound(7200) == 1


def test_fifo_order(make_spool):
    spool = make_spool(10)
    for timestamp in range(1, 6):
        spool.append(payload(timestamp))
    assert len(spool) == 5
    assert timestamps(spool.oldest(2, UNLIMITED)) == [1, 2]
    spool.remove_oldest(2)
    assert timestamps(everything(spool)) == [3, 4, 5]
    spool.append(payload(6))
    assert timestamps(everything(spool)) == [3, 4, 5, 6]
    spool.remove_oldest(10)
    assert len(spool) == 0 and everything(spool) == []


def test_oldest_fits_the_array_in_max_bytes_but_always_gives_one(make_spool):
    spool = make_spool(10)
    items = [payload(t) for t in range(1, 5)]
    for item in items:
        spool.append(item)
    two = len(b"[" + b",".join(items[:2]) + b"]")
    assert spool.oldest(10, two) == items[:2]
    assert spool.oldest(10, two - 1) == items[:1]
    assert spool.oldest(10, 1) == items[:1]
    assert spool.oldest(3, UNLIMITED) == items[:3]


def test_the_bound_drops_the_oldest_and_logs_once_then_a_summary(make_spool, caplog):
    spool = make_spool(3)
    for timestamp in range(1, 11):
        spool.append(payload(timestamp))
    assert len(spool) == 3 and spool.dropped == 7
    assert timestamps(everything(spool)) == [8, 9, 10]
    full = [r for r in caplog.records if "is full" in r.getMessage()]
    assert len(full) == 1
    spool.remove_oldest(1)
    spool.remove_oldest(1)
    summaries = [
        r.getMessage() for r in caplog.records if "oldest payloads while full" in r.getMessage()
    ]
    assert len(summaries) == 1 and "dropped 7" in summaries[0]
    for timestamp in range(11, 14):
        spool.append(payload(timestamp))
    assert spool.dropped == 8
    assert len([r for r in caplog.records if "is full" in r.getMessage()]) == 2


def test_a_bound_below_one_is_refused(make_spool):
    with pytest.raises(ValueError):
        make_spool(0)


def test_disk_spool_resumes_in_order_after_a_restart(tmp_path):
    with DiskSpool(str(tmp_path), 100) as spool:
        for timestamp in range(1, 8):
            spool.append(payload(timestamp))
        spool.remove_oldest(2)
    with DiskSpool(str(tmp_path), 100) as spool:
        assert len(spool) == 5
        spool.append(payload(8))
        assert timestamps(everything(spool)) == [3, 4, 5, 6, 7, 8]
        spool.remove_oldest(6)
    with DiskSpool(str(tmp_path), 100) as spool:
        assert len(spool) == 0
        spool.append(payload(9))
        assert timestamps(everything(spool)) == [9]


def test_a_smaller_bound_after_a_restart_drops_the_oldest(tmp_path):
    with DiskSpool(str(tmp_path), 100) as spool:
        for timestamp in range(1, 11):
            spool.append(payload(timestamp))
    with DiskSpool(str(tmp_path), 4) as spool:
        assert timestamps(everything(spool)) == [7, 8, 9, 10]
        assert spool.dropped == 6
    assert len([name for name in os.listdir(tmp_path) if name.endswith(".json")]) == 4


def test_one_directory_serves_one_agent_at_a_time(tmp_path):
    with DiskSpool(str(tmp_path), 10), pytest.raises(RuntimeError, match="in use"):
        DiskSpool(str(tmp_path), 10)
    with DiskSpool(str(tmp_path), 10) as spool:
        assert len(spool) == 0


@pytest.mark.parametrize(
    "damage",
    [b"", b'{"schema": 1, "timestamp": 3', b"\x00\x00\x00\x00", b"[1, 2]", b"not json"],
    ids=["empty", "truncated", "zeros", "array", "garbage"],
)
def test_a_damaged_file_is_skipped_with_one_line(tmp_path, caplog, damage):
    with DiskSpool(str(tmp_path), 100) as spool:
        for timestamp in range(1, 6):
            spool.append(payload(timestamp))
    [third] = [name for name in sorted(os.listdir(tmp_path)) if name.endswith(".json")][2:3]
    (tmp_path / third).write_bytes(damage)
    with DiskSpool(str(tmp_path), 100) as spool:
        assert len(spool) == 5
        assert timestamps(spool.oldest(3, UNLIMITED)) == [1, 2, 4]
        assert len(spool) == 4
        assert timestamps(everything(spool)) == [1, 2, 4, 5]
    skipped = [r for r in caplog.records if "skipping spooled payload" in r.getMessage()]
    assert len(skipped) == 1 and third in skipped[0].getMessage()
    assert third not in os.listdir(tmp_path)


def test_a_half_written_temporary_file_is_never_an_item(tmp_path):
    with DiskSpool(str(tmp_path), 100) as spool:
        spool.append(payload(1))
    (tmp_path / f"{1:020d}.tmp").write_bytes(b'{"schema": 1, "times')
    (tmp_path / "README").write_text("not ours")
    with DiskSpool(str(tmp_path), 100) as spool:
        assert timestamps(everything(spool)) == [1]
        spool.append(payload(2))
        assert timestamps(everything(spool)) == [1, 2]
    assert set(os.listdir(tmp_path)) == {f"{0:020d}.json", f"{1:020d}.json", ".lock", "README"}


def test_a_file_removed_behind_the_spools_back_is_skipped(tmp_path, caplog):
    with DiskSpool(str(tmp_path), 100) as spool:
        for timestamp in range(1, 4):
            spool.append(payload(timestamp))
        os.unlink(tmp_path / f"{0:020d}.json")
        assert timestamps(everything(spool)) == [2, 3]


def test_a_failed_write_loses_that_payload_and_is_logged_once(tmp_path, caplog):
    with DiskSpool(str(tmp_path), 100) as spool:
        spool.append(payload(1))
        blocker = tmp_path / f"{1:020d}.tmp"
        blocker.mkdir()  # the next temporary file cannot be created, even by root
        spool.append(payload(2))
        spool.append(payload(3))
        blocker.rmdir()
        spool.append(payload(4))
        assert timestamps(everything(spool)) == [1, 4]
        assert spool.dropped == 2
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("cannot write payloads" in line for line in lines) == 1
    assert sum("2 payloads were lost" in line for line in lines) == 1


class Crash(BaseException):
    """The agent dying between the server's answer and the removal of the batch."""


class CrashingSpool(DiskSpool):
    def remove_oldest(self, n: int) -> None:
        raise Crash


def test_a_crash_between_send_and_remove_sends_that_batch_again_and_nothing_else(tmp_path):
    """Delivery is at least once: the batch acknowledged just before a crash is sent again,
    which the server's one-value-per-bucket replacement makes harmless; nothing else repeats."""
    clock = FakeClock()
    with IngestServer() as server:
        spool = DiskSpool(str(tmp_path), 100)
        sender = Sender(server.url, spool=spool, clock=clock)
        sender.submit(payload(1))
        server.stop()
        for timestamp in range(2, 6):
            clock.advance(100)
            sender.submit(payload(timestamp))
        spool.close()
        server.start()
        crashing = CrashingSpool(str(tmp_path), 100)
        with pytest.raises(Crash):
            Sender(server.url, spool=crashing, clock=clock).submit(payload(6))
        crashing.close()
        assert server.timestamps() == [1, 2, 3, 4, 5, 6]
        with DiskSpool(str(tmp_path), 100) as spool:
            sender = Sender(server.url, spool=spool, clock=clock)
            sender.submit(payload(7))
            sender.submit(payload(8))
        assert server.timestamps() == [1, 2, 3, 4, 5, 6, 2, 3, 4, 5, 6, 7, 8]
        assert [len(r.items) for r in server.requests] == [1, 5, 6, 1]


WRITER = textwrap.dedent(
    """
    import json, sys
    from cloudmon.agent.spool import DiskSpool
    spool = DiskSpool(sys.argv[1], int(sys.argv[2]))
    start = int(sys.argv[3])
    filler = "x" * int(sys.argv[4])
    for n in range(start, start + 100000):
        spool.append(json.dumps({"schema": 1, "timestamp": n, "filler": filler}).encode())
        print(n, flush=True)
    """
)


def test_kill_9_while_writing_never_leaves_a_corrupt_item(tmp_path):
    directory = str(tmp_path / "spool")
    bound = 50
    next_timestamp = 0
    acknowledged: list[int] = []
    for round_, filler in enumerate([10, 300_000, 2_000_000, 10, 1_000_000]):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, directory, str(bound), str(next_timestamp), str(filler)],
            stdout=subprocess.PIPE,
            text=True,
        )
        lines = []
        for _ in range(3 + round_ * 2):
            lines.append(int(child.stdout.readline()))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        lines.extend(int(line) for line in child.stdout.read().split())
        child.stdout.close()
        acknowledged.extend(lines)
        with DiskSpool(directory, bound) as spool:
            items = everything(spool)
            seen = timestamps(items)
            assert all(isinstance(json.loads(item), dict) for item in items)
            assert seen == sorted(set(seen))
            # Every append that returned is on disk unless the bound pushed it out (one more
            # append may have completed unacknowledged, pushing out one more).
            assert set(acknowledged[-(bound - 1) :]) <= set(seen)
            next_timestamp = seen[-1] + 2
        assert not [name for name in os.listdir(directory) if name.endswith(".tmp")]
