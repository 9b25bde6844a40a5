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


def start(storage: Storage, every: float) -> threading.Event:
    """A daemon thread running `upkeep` every `every` seconds; set the event to stop it."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            try:
                upkeep(storage)
            except Exception:
                log.exception("upkeep of the store failed; retrying in %.0f s", every)

    threading.Thread(target=run, name="cloudmon-upkeep", daemon=True).start()
    return stop
