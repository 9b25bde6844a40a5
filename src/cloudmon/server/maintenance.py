"""Background upkeep of the store: finished periods rolled up, expired samples deleted."""

import errno
import logging
import sqlite3
import threading

from cloudmon.storage.base import Storage, StoreUpkeep

log = logging.getLogger(__name__)


def upkeep(storage: StoreUpkeep) -> tuple[int, int]:
    """Roll up finished periods, then delete what retention no longer covers."""
    periods = storage.roll_up()
    deleted = storage.expire()
    if periods or deleted:
        log.info("rolled up %d periods, deleted %d expired rows", periods, deleted)
    return periods, deleted


def is_disk_full(error: BaseException) -> bool:
    """Whether an error of the store says its disk is full."""
    return (
        getattr(error, "errno", None) == errno.ENOSPC
        or getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    )


def start(storage: Storage, every: float, checkpoint_every: float | None = None) -> threading.Event:
    """Daemon threads running `upkeep` every `every` seconds and, if given, the store's
    checkpoint every `checkpoint_every` seconds; set the event to stop them. A store with no
    upkeep of its own (see StoreUpkeep) gets none."""
    stop = threading.Event()
    if not isinstance(storage, StoreUpkeep):
        return stop

    def run(work, period: float, what: str) -> None:
        failing = None  # the last failure, logged once until the work succeeds again
        while not stop.wait(period):
            try:
                work()
            except Exception as error:
                if repr(error) == failing:
                    continue
                failing = repr(error)
                if is_disk_full(error):
                    log.warning("%s failed: the disk is full; retrying every %g s", what, period)
                else:
                    log.exception("%s failed; retrying every %g s", what, period)
            else:
                if failing is not None:
                    log.warning("%s works again", what)
                    failing = None

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
