import logging

from cloudmon.agent import loop


class FakeTime:
    """A clock and a stop event whose waits advance the clock instead of sleeping."""

    def __init__(self, cycles: int):
        self.now = 1000.0
        self.cycles_left = cycles
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return self.cycles_left <= 0

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return self.is_set()


def _run(durations, interval=10.0):
    fake = FakeTime(len(durations))
    starts = []
    durations = iter(durations)

    def cycle():
        starts.append(fake.now - 1000.0)
        fake.now += next(durations)
        fake.cycles_left -= 1

    loop.run(cycle, interval, fake, monotonic=fake.monotonic)
    return starts


def test_cycles_start_on_a_fixed_schedule():
    assert _run([0.5, 2.0, 0.1, 9.9]) == [0.0, 10.0, 20.0, 30.0]


def test_overrun_is_reported_and_next_cycle_starts_on_the_next_tick(caplog):
    with caplog.at_level(logging.WARNING):
        starts = _run([0.5, 13.0, 25.0, 0.5, 0.5])
    assert starts == [0.0, 10.0, 30.0, 60.0, 70.0]
    overrun_lines = [r for r in caplog.records if "longer than" in r.message]
    assert len(overrun_lines) == 1  # one line per problem, not per cycle
    assert any("back within the interval" in r.message for r in caplog.records)


def test_a_failing_cycle_does_not_stop_the_loop(caplog):
    fake = FakeTime(3)
    calls = []

    def cycle():
        calls.append(fake.now)
        fake.cycles_left -= 1
        if len(calls) == 1:
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR):
        loop.run(cycle, 5.0, fake, monotonic=fake.monotonic)
    assert len(calls) == 3
    assert "boom" in caplog.text
