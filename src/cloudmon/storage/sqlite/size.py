"""The store within its size (`cloudmon server --retention-size`), and the bytes of each tier.

The size counted is the database file's pages in use plus its WAL: SQLite writes new rows
into free pages before it grows the file, so the file grows no further than the pages once
in use at the same time; its WAL is cut whenever it holds more than `WAL_LIMIT`. Past `HIGH`
of the size, the oldest data is deleted, the oldest period of one resolution first, about
`sealed.DROP_BYTES` per transaction (ingest waits for one at most; the WAL, which takes as
many bytes as a deletion frees, is cut after each), until the store is under `LOW`: first raw
samples whose minute is rolled up, then 1 min rollups whose hour is, then 1 h rollups. A
file made by this version (auto_vacuum INCREMENTAL) also gives pages back to the file system
while it is larger than `HIGH` of the size (a size lowered since); an older file only reuses
them.

The bytes of each tier come from SQLite's dbstat, which reads every page: measured in the
upkeep, at most `MEASURE_SHARE` of the time, and kept in upkeep_figure for /metrics.
"""

import logging
import time

from cloudmon.sizes import format_size
from cloudmon.storage.base import BUCKET, RESOLUTIONS
from cloudmon.storage.sqlite import sealed, usage
from cloudmon.storage.sqlite.connections import WAL_LIMIT
from cloudmon.storage.sqlite.schema import ROLLUP_TABLE

log = logging.getLogger(__name__)

# Deletion starts past HIGH of the size: the 5 % above it take what arrives between two checks
# (`maintenance.SIZE_EVERY` apart) and the WAL's growth between them; where the store grows
# faster, the mark moves down to leave room for GROWTH_ROOM seconds of that growth, to LOWEST
# at the lowest (a burst of rollups or of the WAL passes in seconds). It stops under
# LOW of the size below the mark, so that an episode frees enough for many minutes of samples
# rather than deleting every second.
HIGH = 0.95
LOW = 0.90
GROWTH_ROOM = 3.0  # seconds
LOWEST = 0.75
# Bytes given back to the file system per transaction: moving a page to free one writes it
# and the pages that point to it into the WAL, which counts against the size too.
SHRINK_BYTES = 1 << 20
MEASURE_EVERY = 60.0  # seconds between measures of the tiers at the most
MEASURE_SHARE = 0.02  # of the time spent measuring the tiers at the most
TIERS = {BUCKET: "raw", 60: "1m", 3600: "1h"}
MEASURED = (*(f"bytes_{tier}" for tier in TIERS.values()), "retention_size_bytes")
DELETED = "size_deleted_rows"


class SizeBound:
    """Keeps one store's file within a size, and measures its tiers."""

    def __init__(self, db, size: int | None, monotonic=time.monotonic) -> None:
        """`db`: the store's `Connections`; `size`: bytes, None for no bound."""
        self._db = db
        self.size = size
        self._monotonic = monotonic
        self._deleting = False  # in an episode of deletions, logged when it begins and ends
        self._episode = 0  # rows deleted in it
        self._stuck = False  # nothing left that may go: logged once
        self._unshrinkable = False  # a file over the size that cannot give pages back: logged
        self._measure_after = 0.0
        self._last = None  # (time, bytes used) at the last check
        self._growth = 0.0  # the fastest they grew, bytes a second, decaying slowly

    def marks(self) -> tuple[float, float]:
        """The bytes past which deletion starts, and under which it stops."""
        high = max(LOWEST, min(HIGH, 1 - GROWTH_ROOM * self._growth / self.size)) * self.size
        return high, high - (HIGH - LOW) * self.size

    def keep(self) -> int:
        """Delete the oldest data while the store is over its size; returns rows deleted."""
        if self.size is None:
            return 0
        footprint = self._db.footprint()
        if footprint.wal > WAL_LIMIT:
            # Ingest's pages in the WAL count too: copied and cut before they pile up (the
            # server's checkpoints, a second apart, let a busy store's WAL grow by MiBs).
            self._db.checkpoint(truncate=True)
            footprint = self._db.footprint()
        now = self._monotonic()
        if self._last is not None and now > self._last[0]:
            elapsed = now - self._last[0]
            growth = (footprint.used - self._last[1]) / elapsed
            self._growth = max(growth, 0.8**elapsed * self._growth)
        high, low = self.marks()
        if not self._deleting and footprint.used > high:
            self._deleting, self._episode = True, 0
            log.warning(
                "the store takes %s, over %.0f %% of its --retention-size %s: deleting the"
                " oldest data down to %.0f %% (raw samples already rolled up first, then"
                " 1 min rollups, then 1 h rollups)",
                format_size(footprint.used),
                100 * high / self.size,
                format_size(self.size),
                100 * low / self.size,
            )
        deleted = 0
        while self._deleting and footprint.used > low:
            rows = self._db.transaction(self._delete_oldest)
            if rows is None:
                if not self._stuck:
                    log.warning(
                        "the store takes %s, over %.0f %% of its --retention-size %s, and"
                        " all it holds is samples whose minute or hour is not rolled up yet:"
                        " it grows until the upkeep rolls them up",
                        format_size(footprint.used),
                        100 * low / self.size,
                        format_size(self.size),
                    )
                    self._stuck = True
                break
            deleted += rows
            # Deleting writes pages to the WAL, as many as it frees: cut back before the
            # next deletion rather than left to grow by each.
            self._db.checkpoint(truncate=True)
            footprint = self._db.footprint()
        self._episode += deleted
        self._last = (now, footprint.used)
        if self._deleting and footprint.used <= low:
            log.info(
                "the store takes %s, within its --retention-size %s again: %d rows deleted",
                format_size(footprint.used),
                format_size(self.size),
                self._episode,
            )
            self._deleting = self._stuck = False
        self._shrink(footprint)
        return deleted

    def _delete_oldest(self, conn) -> int | None:
        """Delete the oldest period of the finest resolution that holds one a coarser one
        summarises (1 h rollups: any); the rows deleted, None when there is none."""
        done = dict(conn.execute("SELECT res, done FROM rollup_state"))
        # Periods a rollup is pending for still need their rows.
        pending = set(conn.execute("SELECT res, bucket FROM rollup_dirty"))
        pending |= set(conn.execute("SELECT res, bucket FROM rollup_doing"))
        pending |= set(conn.execute("SELECT DISTINCT res, bucket FROM rollup_stale"))
        for res, coarser in zip(RESOLUTIONS, (*RESOLUTIONS[1:], None), strict=True):
            tables = [
                table if res == BUCKET else ROLLUP_TABLE[table]
                for table in sealed.dependents_first(ROLLUP_TABLE)
            ]
            where = "" if res == BUCKET else f"res = {res} AND "
            heads = [
                conn.execute(f"SELECT min(bucket) FROM {table} WHERE {where}1").fetchone()[0]
                for table in tables
            ]
            chunks = [sealed.first_sealed(conn, table, res) for table in tables]
            starts = [bucket for bucket in heads + chunks if bucket is not None]
            if not starts:
                continue
            # Sealed rows go some at a time (`sealed.DROPPED`), each chunk trimmed.
            length = sealed.DROPPED[res] if min(starts) in chunks else res
            period = min(starts) // length * length
            if coarser is not None and (
                period + length > done.get(coarser, period)
                or any(
                    (coarser, bucket) in pending
                    for bucket in range(period // coarser * coarser, period + length, coarser)
                )
            ):
                continue
            # A period may take more than one transaction, each deleting about DROP_BYTES
            # (the WAL takes as much): the next call finds the rest of it, the oldest still.
            rows, budget = 0, sealed.DROP_BYTES
            if coarser is None:  # the usage sketches go with the 1 h rollups
                rows += usage.expire_before(conn, period + length)
            for table in tables:
                if budget > 0:
                    dropped, taken = sealed.drop(conn, table, res, period + length, budget)
                    rows += dropped
                    budget -= taken
            conn.execute(
                "INSERT INTO upkeep_figure VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (DELETED, rows),
            )
            conn.execute(
                "INSERT INTO size_deleted VALUES (?, ?)"
                " ON CONFLICT (res) DO UPDATE SET before = max(before, excluded.before)",
                (res, period + length),
            )
            return rows
        return None

    def room(self) -> bool:
        """Whether the store is under the mark deletions bring it down to (no size: always):
        below it, work that takes pages before it frees more (sealing) may go on."""
        if self.size is None:
            return True
        return not self._deleting and self._db.footprint().used < self.marks()[1]

    def _shrink(self, footprint) -> None:
        """Give free pages back while the file is larger than HIGH of the size."""
        over = footprint.pages * footprint.page_size + footprint.wal - self.marks()[0]
        if over <= 0 or footprint.free == 0:
            return
        (mode,) = self._db.reader().execute("PRAGMA auto_vacuum").fetchone()
        if mode != 2:  # INCREMENTAL
            if not self._unshrinkable:
                log.warning(
                    "the store's file (%s, %s of it free pages) is larger than its"
                    " --retention-size %s and cannot shrink: it was made before cloudmon gave"
                    " free pages back. It grows no more; to shrink it, stop the server and run"
                    " sqlite3 %s 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM' (it needs room for"
                    " a copy of the file)",
                    format_size(footprint.on_disk),
                    format_size(footprint.free * footprint.page_size),
                    format_size(self.size),
                    self._db.path,
                )
                self._unshrinkable = True
            return
        pages = min(footprint.free, -(-int(over) // footprint.page_size))
        step = SHRINK_BYTES // footprint.page_size
        for _ in range(0, pages, step):
            with self._db.writing() as conn:
                # Run to its end (execute would take one step: one page); in a transaction
                # of its own.
                conn.executescript(f"PRAGMA incremental_vacuum({step})")
            self._db.checkpoint(truncate=True)  # the file is cut where the WAL's copy ends

    def measure(self) -> dict[str, float] | None:
        """The bytes of each tier, kept for /metrics; None when measured too recently."""
        started = self._monotonic()
        if started < self._measure_after:
            return None
        conn = self._db.reader()
        tables = dict(ROLLUP_TABLE) | dict.fromkeys([*ROLLUP_TABLE.values(), "usage_day"])
        pages: dict[str, tuple[int, int]] = {}
        # A WITHOUT ROWID table is a B-tree of its rows: one cell each, on some page.
        for name, size, cells in conn.execute(
            "SELECT name, sum(pgsize), sum(ncell) FROM dbstat GROUP BY name"
        ):
            if name in tables:
                pages[name] = (size, cells)
        (chunk_pages,) = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name IN"
            " (SELECT name FROM sqlite_schema WHERE tbl_name = 'chunk')"
        ).fetchone()
        tiers = dict.fromkeys(RESOLUTIONS, 0.0)
        # The sealed spans' pages (their indexes' too) shared out by each resolution's bytes.
        shares = dict(conn.execute("SELECT res, sum(length(v)) FROM chunk GROUP BY res"))
        for res, share in shares.items():
            tiers[res] += chunk_pages * share / sum(shares.values())
        for table, rollup in ROLLUP_TABLE.items():
            tiers[BUCKET] += pages.get(table, (0, 0))[0]
            size, cells = pages.get(rollup, (0, 0))
            if not cells:
                continue
            # Both rollup resolutions share a table: its pages shared out by their rows.
            (hours,) = conn.execute(f"SELECT count(*) FROM {rollup} WHERE res = 3600").fetchone()
            tiers[3600] += size * hours / cells
            tiers[60] += size * (cells - hours) / cells
        tiers[3600] += pages.get("usage_day", (0, 0))[0]  # the usage sketches go with it
        figures = {f"bytes_{TIERS[res]}": value for res, value in tiers.items()}
        if self.size is not None:
            figures["retention_size_bytes"] = float(self.size)

        def keep(conn) -> None:
            # What a measure writes, replaced whole (a size since unset goes); the rows
            # deleted for size stay.
            conn.executemany("DELETE FROM upkeep_figure WHERE name = ?", [(n,) for n in MEASURED])
            conn.executemany("INSERT INTO upkeep_figure VALUES (?, ?)", figures.items())

        self._db.transaction(keep)
        took = self._monotonic() - started
        self._measure_after = started + max(MEASURE_EVERY, took / MEASURE_SHARE)
        return figures


def figures(conn) -> dict[str, float]:
    """What the upkeep last measured (see `SizeBound.measure`) and the rows it deleted."""
    return dict(conn.execute("SELECT name, value FROM upkeep_figure"))
