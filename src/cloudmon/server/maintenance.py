"""Background upkeep of the store: finished periods rolled up, expired samples deleted, the
store kept within its size."""

import errno
import logging
import sqlite3
import threading

from cloudmon.storage.base import Storage, StoreUpkeep

log = logging.getLogger(__name__)
# Seconds between checks of the store's size: a check reads three numbers and stats two
# files; what arrives between two checks is what the store may pass its deletion mark by.
SIZE_EVERY = 0.25


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


def start(
    storage: Storage,
    every: float,
    checkpoint_every: float | None = None,
    size_every: float = SIZE_EVERY,
) -> threading.Event:
    """Daemon threads running `upkeep` every `every` seconds, the store's size kept every
    `size_every` seconds and, if given, its checkpoint every `checkpoint_every` seconds; set
    the event to stop them. A store with no upkeep of its own (see StoreUpkeep) gets none."""
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

    tasks = [
        (lambda: upkeep(storage), every, "upkeep of the store", "cloudmon-upkeep"),
        # A thread of its own: rolling up a backlog of periods takes minutes, and the store
        # must not pass its size meanwhile.
        (storage.keep_size, size_every, "keeping the store within its size", "cloudmon-size"),
    ]
    if checkpoint_every:
        tasks.append(
            (storage.checkpoint, checkpoint_every, "checkpoint of the store", "cloudmon-checkpoint")
        )
    for work, period, what, name in tasks:
        threading.Thread(target=run, args=(work, period, what), name=name, daemon=True).start()
    return stop
