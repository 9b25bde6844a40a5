"""Background upkeep of the store: samples older than the retention are deleted."""

import logging
import threading

from cloudmon.storage.base import Storage, bucket_of

log = logging.getLogger(__name__)


def expire_once(storage: Storage, now: float, retention: float) -> int:
    """Delete the samples older than `retention` seconds before `now`; returns rows deleted."""
    return storage.expire(bucket_of(now - retention))


def start(storage: Storage, clock, retention: float, every: float) -> threading.Event:
    """A daemon thread expiring old samples every `every` seconds; set the event to stop it."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            try:
                deleted = expire_once(storage, clock(), retention)
                if deleted:
                    log.info("deleted %d rows older than %.0f s", deleted, retention)
            except Exception:
                log.exception("expiring old samples failed; retrying in %.0f s", every)

    threading.Thread(target=run, name="cloudmon-expire", daemon=True).start()
    return stop
