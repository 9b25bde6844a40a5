"""Random runs of appends, flushes, outages, refusals and restarts against a model of the sender."""

import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sender_support import FakeClock, IngestServer, payload

from cloudmon.agent.sender import Sender
from cloudmon.agent.spool import DiskSpool, MemorySpool

appends = st.tuples(st.just("append"), st.booleans())  # True: a payload the server refuses
answers = st.tuples(st.just("answers"), st.lists(st.sampled_from([401, 413, 429, 503]), max_size=4))
waits = st.tuples(st.just("wait"), st.floats(min_value=0, max_value=120))
restarts = st.tuples(st.just("restart"), st.none())
operations = st.lists(st.one_of(appends, appends, answers, waits, restarts), max_size=30)


def check(kind: str, bound: int, max_batch_bytes: int, steps) -> None:
    """Run the steps; what the server took is an in-order subsequence of what was appended,
    and every payload is either received once, refused on its own, or pushed out by the bound."""
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as directory, IngestServer() as server:
        server.responder = lambda items, headers: (
            (400, {}) if any(item["bad"] for item in items) else (200, {})
        )

        def open_sender() -> Sender:
            spool = MemorySpool(bound) if kind == "memory" else DiskSpool(directory, bound)
            return Sender(server.url, spool=spool, clock=clock, max_batch_bytes=max_batch_bytes)

        sender = open_sender()
        bad: list[bool] = []
        pushed_out = refused = 0
        split_refused = False
        for step, argument in steps:
            if step == "append":
                clock.advance(10)
                bad.append(argument)
                sender.submit(payload(len(bad) - 1, bad=argument))
            elif step == "answers":
                server.script = list(argument)
                split_refused |= 413 in argument
            elif step == "wait":
                clock.advance(argument)
                sender.flush()
            elif kind == "disk":
                pushed_out += sender.spool.dropped
                refused += sender.rejected
                sender.spool.close()
                sender = open_sender()
            assert len(sender.spool) <= bound
            received = server.timestamps()
            assert received == sorted(set(received)), "out of order or sent twice"
        server.script = []
        clock.advance(1000)
        sender.flush(deadline=clock() + 1000)
        pushed_out += sender.spool.dropped
        refused += sender.rejected
        sender.spool.close()
        received = server.timestamps()
        assert received == sorted(set(received)), "out of order or sent twice"
        assert not any(bad[i] for i in received)
        assert len(sender.spool) == 0
        assert len(received) + pushed_out + refused == len(bad)
        if not split_refused:
            assert refused <= bad.count(True)
            if pushed_out == 0:
                assert received == [i for i, is_bad in enumerate(bad) if not is_bad]


settings_ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("spool", ["memory", "disk"])
@settings_
@given(
    bound=st.integers(1, 8),
    max_batch_bytes=st.sampled_from([60, 200, 1 << 20]),
    steps=operations,
)
def test_spool_model(spool, bound, max_batch_bytes, steps):
    check(spool, bound, max_batch_bytes, steps)
