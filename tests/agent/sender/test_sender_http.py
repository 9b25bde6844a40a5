"""The sender against a real HTTP server on 127.0.0.1: outages, backoff, batching, refusals."""

import email.utils
import json
import logging
import socket
import time

import pytest
from sender_support import FakeClock, IngestServer, payload

from cloudmon.agent.sender import Sender, parse_retry_after
from cloudmon.agent.spool import MemorySpool


def make_sender(server: IngestServer, clock: FakeClock, bound: int = 100, **options) -> Sender:
    options.setdefault("jitter", lambda: 1.0)
    return Sender(server.url, spool=MemorySpool(bound), clock=clock, timeout=2.0, **options)


def cycle(sender: Sender, clock: FakeClock, timestamp: float) -> None:
    """One agent cycle: a new sample, 10 s after the previous one."""
    clock.advance(10)
    sender.submit(payload(timestamp))


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_one_payload_is_sent_gzipped_as_an_array_stamped_when_sent(server, clock):
    sender = make_sender(server, clock, wall_clock=lambda: 1764100012.25)
    sender.submit(payload(1.0))
    [request] = server.requests
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Content-Encoding"] == "gzip"
    assert "Authorization" not in request.headers
    sent = {**json.loads(payload(1.0)), "sent_at": 1764100012.25}
    assert request.raw.startswith(b"[") and json.loads(request.raw) == [sent]
    assert (sender.sent, sender.failures, sender.dropped, len(sender.spool)) == (1, 0, 0, 0)


def test_a_spooled_payload_is_stamped_when_it_is_finally_sent(server, clock):
    wall = FakeClock(1764100000.0)
    sender = make_sender(server, clock, wall_clock=wall)
    server.stop()
    cycle(sender, clock, 1.0)
    server.start()
    wall.advance(600)
    clock.advance(600)
    sender.submit(payload(2.0))
    assert [item["sent_at"] for item in server.accepted] == [1764100600.0] * 2


def test_a_clock_refused_by_the_server_is_logged_once(server, clock, caplog):
    refusal = {"error": "payload: timestamp lies 3600 s ahead", "clock_skew_seconds": 3600.4}
    server.responder = lambda items, headers: (400, {}, refusal)
    sender = make_sender(server, clock)
    for timestamp in range(1, 6):
        cycle(sender, clock, timestamp)
    assert sender.rejected == 5 and len(sender.spool) == 0
    [line] = [line for line in warnings(caplog) if "clock" in line]
    assert "3600 s ahead" in line and "NTP" in line
    assert not any("refused a payload" in line for line in warnings(caplog))
    server.responder = lambda items, headers: (200, {})
    cycle(sender, clock, 6)
    assert sum("clock is right" in line for line in warnings(caplog)) == 1


def test_outage_loses_nothing_keeps_order_and_catches_up_in_batches(server, clock, caplog):
    sender = make_sender(server, clock)
    timestamps = iter(range(1, 1000))
    for _ in range(3):
        cycle(sender, clock, next(timestamps))
    server.stop()
    for _ in range(20):
        cycle(sender, clock, next(timestamps))
    assert len(sender.spool) == 20
    server.start()
    server.script = [503, 503]
    for _ in range(25):
        cycle(sender, clock, next(timestamps))
    assert len(sender.spool) == 0
    assert server.timestamps() == list(range(1, 49))
    assert any(len(r.items) > 1 for r in server.requests if r.status == 200)
    assert sender.sent == 48 and sender.dropped == 0
    # Backing off: far fewer attempts than the 20 + 2 cycles that failed.
    assert 2 < sender.failures < 15
    logged = warnings(caplog)
    assert sum("is unreachable" in line for line in logged) == 1
    assert sum("answers HTTP 503" in line for line in logged) == 1
    assert sum("reachable again" in line for line in logged) == 1


def test_recovery_is_logged_with_what_was_delivered(server, clock, caplog):
    sender = make_sender(server, clock)
    server.responder = lambda items, headers: (503, {})
    for timestamp in range(1, 4):
        cycle(sender, clock, timestamp)
    server.responder = lambda items, headers: (200, {})
    clock.advance(120)
    sender.submit(payload(4))
    [back] = [line for line in warnings(caplog) if "reachable again" in line]
    assert back.endswith(
        f"after {sender.failures} failed attempts; delivered 4 spooled payloads, 0 left"
    )


def test_the_bound_drops_the_oldest_and_counts_them(server, clock, caplog):
    sender = make_sender(server, clock, bound=5)
    server.stop()
    for timestamp in range(1, 13):
        cycle(sender, clock, timestamp)
    assert len(sender.spool) == 5
    assert sender.spool.dropped == sender.dropped == 7
    server.start()
    clock.advance(120)
    sender.flush()
    assert server.timestamps() == [8, 9, 10, 11, 12]
    logged = warnings(caplog)
    assert sum("is full" in line for line in logged) == 1
    assert sum("dropped 7 oldest payloads" in line for line in logged) == 1


def test_backoff_doubles_to_its_cap_and_submit_only_spools_meanwhile(server, clock):
    server.responder = lambda items, headers: (503, {})
    sender = make_sender(server, clock, backoff_base=1.0, backoff_cap=60.0)
    delays = []
    sender.submit(payload(0))
    for timestamp in range(1, 12):
        delays.append(sender.retry_at - clock())
        clock.now = sender.retry_at - 0.01
        before = len(server.requests)
        sender.submit(payload(timestamp))
        assert len(server.requests) == before, "a request was made while backing off"
        clock.now = sender.retry_at
        sender.flush()
        assert len(server.requests) == before + 1
    assert delays == pytest.approx([1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60])
    assert len(sender.spool) == 12


def test_jitter_spreads_the_delay_over_its_upper_half(server, clock):
    server.responder = lambda items, headers: (503, {})
    sender = make_sender(server, clock, jitter=lambda: 0.0)
    sender.submit(payload(0))
    sender.submit(payload(1))
    assert sender.retry_at - clock() == pytest.approx(0.5)
    clock.advance(0.5)
    sender.flush()
    assert sender.retry_at - clock() == pytest.approx(1.0)


def test_success_resets_the_backoff(server, clock):
    sender = make_sender(server, clock)
    server.script = [503, 503, 503]
    for _ in range(3):
        sender.submit(payload(clock()))
        clock.now = sender.retry_at
    sender.submit(payload(clock()))
    assert len(sender.spool) == 0
    server.script = [503]
    sender.submit(payload(clock()))
    assert sender.retry_at - clock() == pytest.approx(1.0)


def test_retry_after_is_honoured(server, clock):
    sender = make_sender(server, clock, jitter=lambda: 1.0)
    server.script = [(429, {"Retry-After": "30"})]
    sender.submit(payload(1))
    assert len(sender.spool) == 1
    clock.advance(29.9)
    sender.submit(payload(2))
    assert len(server.requests) == 1
    assert sender.retry_at - 1000.0 == pytest.approx(33.0)
    clock.now = sender.retry_at
    sender.submit(payload(3))
    assert len(server.requests) == 2
    assert server.timestamps() == [1, 2, 3]


def test_retry_after_is_capped(server, clock):
    sender = make_sender(server, clock, retry_after_cap=100.0, jitter=lambda: 0.0)
    server.script = [(503, {"Retry-After": "86400"})]
    sender.submit(payload(1))
    assert sender.retry_at - clock() == pytest.approx(100.0)


def test_parse_retry_after():
    now = 1_764_100_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after(email.utils.formatdate(now + 45, usegmt=True), now) == 45.0
    assert parse_retry_after(email.utils.formatdate(now - 45, usegmt=True), now) == 0.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 -0000", 784111777.0) == 0.0
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_token_is_sent_stripped_and_reread_when_rotated(server, clock, tmp_path, caplog):
    token_file = tmp_path / "token"
    token_file.write_text("  first-secret\n\n")
    sender = make_sender(server, clock, token_file=str(token_file))
    sender.submit(payload(1))
    # A Secret volume is rotated by swapping a symlink; a rename gives a new inode the same way.
    replacement = tmp_path / "token.new"
    replacement.write_text("second-secret\n")
    replacement.rename(token_file)
    sender.submit(payload(2))
    assert [r.headers["Authorization"] for r in server.requests] == [
        "Bearer first-secret",
        "Bearer second-secret",
    ]
    assert not any("secret" in record.getMessage() for record in caplog.records)


def test_a_refused_token_keeps_the_payloads_and_is_logged_once(server, clock, tmp_path, caplog):
    token_file = tmp_path / "token"
    token_file.write_text("old-7f3a")
    server.responder = lambda items, headers: (
        (200, {}) if headers.get("Authorization") == "Bearer new-9c1b" else (401, {})
    )
    sender = make_sender(server, clock, token_file=str(token_file))
    for timestamp in range(1, 21):
        cycle(sender, clock, timestamp)
    assert len(sender.spool) == 20 and sender.dropped == 0 and sender.failures > 2
    assert sum("refuses the token" in line for line in warnings(caplog)) == 1
    token_file.write_text("new-9c1b\n")
    clock.advance(120)
    sender.flush()
    assert server.timestamps() == list(range(1, 21))
    assert not any("9c1b" in line or "7f3a" in line for line in warnings(caplog))


def test_an_unreadable_token_file_is_reported_once(server, clock, tmp_path, caplog):
    sender = make_sender(server, clock, token_file=str(tmp_path / "missing"))
    for timestamp in range(1, 4):
        cycle(sender, clock, timestamp)
    assert "Authorization" not in server.requests[0].headers
    assert sum("cannot be read" in line for line in warnings(caplog)) == 1


def test_a_token_with_a_line_break_inside_is_not_sent(server, clock, tmp_path, caplog):
    token_file = tmp_path / "token"
    token_file.write_text("abc\ndef-secret\n")
    sender = make_sender(server, clock, token_file=str(token_file))
    sender.submit(payload(1))
    assert "Authorization" not in server.requests[0].headers
    assert any("not allowed in a header" in line for line in warnings(caplog))
    assert not any("secret" in record.getMessage() for record in caplog.records)


def test_413_splits_the_batch_until_it_fits(server, clock):
    server.responder = lambda items, headers: (413, {}) if len(items) > 3 else (200, {})
    sender = make_sender(server, clock)
    server.stop()
    for timestamp in range(1, 11):
        cycle(sender, clock, timestamp)
    server.start()
    clock.advance(120)
    assert sender.flush() == 10
    assert server.timestamps() == list(range(1, 11))
    # Halved, not sent one by one: 10 and 5 are refused, then five arrays of 2.
    assert [len(r.items) for r in server.requests] == [10, 5, 2, 2, 2, 2, 2]
    assert sender.dropped == 0


def test_413_on_a_single_payload_drops_only_that_one(server, clock, caplog):
    server.responder = lambda items, headers: (
        (413, {}) if any("huge" in item for item in items) else (200, {})
    )
    sender = make_sender(server, clock)
    server.stop()
    for timestamp in range(1, 6):
        clock.advance(10)
        sender.submit(payload(timestamp, huge=True) if timestamp == 3 else payload(timestamp))
    server.start()
    clock.advance(120)
    sender.flush()
    assert server.timestamps() == [1, 2, 4, 5]
    assert sender.rejected == sender.dropped == 1 and len(sender.spool) == 0
    assert sum("refused a payload" in line and "413" in line for line in warnings(caplog)) == 1


@pytest.mark.parametrize("status", [400, 415, 422])
def test_a_payload_refused_on_its_own_is_dropped_and_the_rest_delivered(
    server, clock, caplog, status
):
    server.responder = lambda items, headers: (
        (status, {}) if any(item.get("bad") for item in items) else (200, {})
    )
    sender = make_sender(server, clock)
    server.stop()
    for timestamp in range(1, 8):
        clock.advance(10)
        sender.submit(payload(timestamp, bad=timestamp == 4))
    server.start()
    clock.advance(120)
    failures = sender.failures
    sender.flush()
    assert server.timestamps() == [1, 2, 3, 5, 6, 7]
    assert [len(r.items) for r in server.requests] == [7, 1, 1, 1, 1, 1, 1, 1]
    assert (sender.rejected, sender.failures, len(sender.spool)) == (1, failures, 0)
    [line] = [line for line in warnings(caplog) if "refused a payload" in line]
    assert f"HTTP {status}: status {status}" in line


@pytest.mark.parametrize("status", [404, 405, 307, 500, 502])
def test_statuses_that_are_not_about_the_payload_keep_everything(server, clock, caplog, status):
    server.responder = lambda items, headers: (status, {"Location": "/elsewhere"})
    sender = make_sender(server, clock)
    for timestamp in range(1, 6):
        cycle(sender, clock, timestamp)
    assert len(sender.spool) == 5 and sender.dropped == 0
    assert sum(f"HTTP {status}" in line for line in warnings(caplog)) == 1
    server.responder = lambda items, headers: (200, {})
    clock.advance(120)
    sender.flush()
    assert server.timestamps() == [1, 2, 3, 4, 5]


def test_batches_respect_max_batch_bytes(server, clock):
    sender = make_sender(server, clock, max_batch_bytes=1000)
    server.stop()
    for timestamp in range(1, 41):
        clock.advance(10)
        sender.submit(payload(timestamp, filler="x" * 100))
    server.start()
    clock.advance(120)
    sender.flush()
    assert server.timestamps() == list(range(1, 41))
    assert all(len(r.raw) <= 1000 for r in server.requests if r.status == 200)
    assert max(len(r.items) for r in server.requests) > 1


def test_a_payload_larger_than_a_batch_is_still_sent_alone(server, clock):
    sender = make_sender(server, clock, max_batch_bytes=100)
    sender.submit(payload(1, filler="x" * 500))
    assert server.timestamps() == [1]


def test_flush_stops_at_its_deadline_and_the_next_submit_goes_on(server, clock):
    server.on_request = lambda: clock.advance(1.0)
    sender = make_sender(server, clock, max_batch_bytes=60, flush_seconds=3.0)
    server.stop()
    for timestamp in range(1, 11):
        cycle(sender, clock, timestamp)
    server.start()
    clock.advance(120)
    failures = sender.failures
    delivered = sender.flush()
    assert delivered == 3 and len(server.requests) == 3
    assert sender.failures == failures and sender.retry_at < clock()
    sender.submit(payload(11))
    assert server.timestamps() == list(range(1, 7))
    assert sender.flush(deadline=clock() + 100) == 5
    assert server.timestamps() == list(range(1, 12))


def test_a_server_that_never_answers_times_out(clock, caplog):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # connections complete in the backlog; nothing is ever read or said
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        sender = Sender(url, spool=MemorySpool(10), clock=clock, timeout=0.2)
        began = time.monotonic()
        sender.submit(payload(1))
        assert time.monotonic() - began < 2.0
    assert (sender.failures, len(sender.spool)) == (1, 1)
    assert any("is unreachable" in line and "timed out" in line for line in warnings(caplog))


def test_a_base_url_path_is_kept(clock):
    with IngestServer() as server:
        sender = Sender(server.url + "/monitoring/", spool=MemorySpool(5), clock=clock)
        sender.submit(payload(1))
        assert [r.path for r in server.requests] == ["/monitoring/api/ingest"]


@pytest.mark.parametrize("url", ["ftp://server", "server:8080", "http://"])
def test_a_bad_server_url_is_refused(url):
    with pytest.raises(ValueError, match="http"):
        Sender(url, spool=MemorySpool(1))
