"""The collection cycle: a sample every interval, on a fixed schedule."""

import logging
import math
import threading
import time

log = logging.getLogger(__name__)


def run(cycle, interval: float, stop: threading.Event, monotonic=time.monotonic) -> None:
    """Call cycle() every `interval` seconds until `stop` is set.

    Ticks stay on the schedule set at the start: a cycle that runs longer than the interval
    is reported, the ticks it overran are skipped, and the next cycle starts on the next tick.
    """
    start = monotonic()
    tick = 0
    overruns = 0
    while not stop.is_set():
        began = monotonic()
        try:
            cycle()
        except Exception:
            log.exception("collection cycle failed; the next one starts on schedule")
        took = monotonic() - began
        if took > interval:
            if overruns == 0:
                log.warning(
                    "a cycle took %.2f s, longer than the %.2f s interval; skipping missed ticks",
                    took,
                    interval,
                )
            overruns += 1
        elif overruns:
            log.warning("cycles are back within the interval after %d overran it", overruns)
            overruns = 0
        tick = max(tick + 1, math.ceil((monotonic() - start) / interval))
        stop.wait(max(0.0, start + tick * interval - monotonic()))
