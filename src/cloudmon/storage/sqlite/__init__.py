"""The embedded store: one SQLite file in WAL mode, one writer, concurrent readers.

A row holds one entity's 10 s bucket (or, in a rollup, its 1 min or 1 h period); the
namespace, deployment and cluster rows are sums of their members' rows, kept exactly as
those are written. `SqliteStorage` is a façade over the
store's parts, each in its own module:

- `connections`: opening the file, each thread's reader, the writer lock, the write queue
  and the group commit of waiting writes;
- `schema`: the tables, which holds each kind's rows, and the migration of older files;
- `codec`: a row's BLOB (a mask of the columns present, then their values or STATS; a
  group's exact sum);
- `writer`: where a write becomes rows (entities' ids and spans, rows replaced per bucket);
- `sums`: namespace, deployment and cluster rows, changed as their members' rows are;
- `upkeep`: rollups, sealing, expiry, pruning and the WAL's checkpoint;
- `sealed`, `chunks`: finished spans of rows, compressed into a chunk per entity and span,
  and the reads that see them and the head tables' rows together;
- `size`: the store within its size (the oldest data deleted), the bytes of each tier;
- `usage`: each pod's and container's usage sketch of each day, which right-sizing reads;
- `reader`: where rows become entities, latest values and series.
"""

import os
import time
from collections.abc import Sequence
from pathlib import Path

from cloudmon.storage.base import RETENTION, Storage, StoreUpkeep, UsageHistory, register
from cloudmon.storage.sqlite import schema, usage
from cloudmon.storage.sqlite.connections import MAX_WAITING, Connections
from cloudmon.storage.sqlite.reader import Reader
from cloudmon.storage.sqlite.schema import SAMPLE_TABLE
from cloudmon.storage.sqlite.size import SizeBound, figures
from cloudmon.storage.sqlite.upkeep import Upkeep
from cloudmon.storage.sqlite.writer import Prepared, Writer

__all__ = ["SqliteStorage"]

CACHE_MB = 16  # SQLite's memory in one process, all its connections' page caches together


@register("sqlite")
class SqliteStorage(Storage, StoreUpkeep, UsageHistory):
    """Samples in one SQLite file; safe to share between threads and processes."""

    def __init__(
        self,
        path: str | os.PathLike,
        cache_mb: int = CACHE_MB,
        retention: dict[int, float] | None = None,
        clock=time.time,
        autocheckpoint: bool = True,
        max_waiting: int = MAX_WAITING,
        retention_size: int | None = None,
    ) -> None:
        """With autocheckpoint off, writes leave the WAL to `checkpoint` (run elsewhere);
        past `max_waiting` writes waiting or writing, in all processes, write refuses more;
        past `retention_size` bytes, `keep_size` deletes the oldest data."""
        self.path = Path(path)
        self.retention = {**RETENTION, **(retention or {})}
        self.writer = Writer()
        self.db = Connections(self.path, cache_mb, autocheckpoint, max_waiting, self.writer.forget)
        try:
            schema.migrate(self.db)
        except BaseException:
            self.db.close()
            raise
        self.upkeep = Upkeep(self.db, clock, self.retention)
        self.reader = Reader(self.db, clock, self.retention)
        self.size = SizeBound(self.db, retention_size)

    @classmethod
    def from_url(cls, url: str, **options) -> "SqliteStorage":
        """sqlite:///relative/path or sqlite:////absolute/path."""
        return cls(cls.path_of(url), **options)

    @staticmethod
    def path_of(url: str) -> str:
        """The file of a sqlite:///PATH URL."""
        path = url.removeprefix("sqlite:///")
        if not path or path == url:
            raise ValueError(f"storage URL {url!r}: expected sqlite:///PATH")
        return path

    def schema_version(self) -> int:
        """The schema version of the file."""
        return schema.version(self.db.reader())

    def write(self, payloads: Sequence) -> int:
        """Store payloads; OSError(EAGAIN) when too many writes wait already."""
        return self.db.commit([Prepared(payload) for payload in payloads], self.writer.store)

    def entities(self, kind, filters=None, since=None, span=None):
        return self.reader.entities(kind, filters, since, span)

    def latest(self, entities, names):
        return self.reader.latest(entities, names)

    def series(self, entities, names, span):
        return self.reader.series(entities, names, span)

    def resolution(self, span) -> int:
        """The resolution a span is answered from (raw samples or a rollup)."""
        return self.reader.resolution(span)

    @classmethod
    def worker_options(cls, threads: int) -> dict:
        return {"autocheckpoint": False}  # the master checkpoints

    def roll_up(self) -> int:
        # Late samples' periods waiting to be rolled up again keep their raw rows from
        # deletion: under a size bound they are rolled up at once.
        periods = self.upkeep.roll_up(wait_for_late=self.size.size is None)
        # Sealing takes pages (the WAL's, the chunks') before it gives more back: only while
        # the store has room under its size.
        if self.size.room():
            self.upkeep.seal()
        return periods

    def expire(self) -> int:
        return self.upkeep.expire()

    def checkpoint(self) -> None:
        self.db.checkpoint()

    def keep_size(self) -> int:
        # Measured first: what the measure writes would be left in the WAL that the
        # deletions cut back.
        self.size.measure()
        return self.size.keep()

    def usage(self, kind, start, end, ids=None):
        return usage.read(self.db.reader(), SAMPLE_TABLE[kind], start, end, ids)

    def ping(self) -> None:
        self.db.ping()

    def stats(self) -> dict[str, float]:
        footprint = self.db.footprint()
        return {
            "bytes": float(footprint.used - footprint.wal),
            "disk_bytes": float(footprint.on_disk),
            **figures(self.db.reader()),
        }

    def close(self) -> None:
        self.db.close()
