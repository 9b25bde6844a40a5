"""Background upkeep of the store: finished periods rolled up, expired samples deleted."""

import logging
import threading

from cloudmon.storage.base import Storage

log = logging.getLogger(__name__)


def upkeep(storage: Storage) -> tuple[int, int]:
    """Roll up finished periods, then delete what retention no longer covers."""
    periods = storage.roll_up()
    deleted = storage.expire()
    if periods or deleted:
        log.info("rolled up %d periods, deleted %d expired rows", periods, deleted)
    return periods, deleted


def start(storage: Storage, every: float, checkpoint_every: float | None = None) -> threading.Event:
    """Daemon threads running `upkeep` every `every` seconds and, if given, the store's
    checkpoint every `checkpoint_every` seconds; set the event to stop them."""
    stop = threading.Event()

    def run(work, period: float, what: str) -> None:
        while not stop.wait(period):
            try:
                work()
            except Exception:
                log.exception("%s failed; retrying in %.0f s", what, period)

    threading.Thread(
        target=run,
        args=(lambda: upkeep(storage), every, "upkeep of the store"),
        name="cloudmon-upkeep",
        daemon=True,
    ).start()
    if checkpoint_every:
        threading.Thread(
            target=run,
            args=(storage.checkpoint, checkpoint_every, "checkpoint of the store"),
            name="cloudmon-checkpoint",
            daemon=True,
        ).start()
    return stop
