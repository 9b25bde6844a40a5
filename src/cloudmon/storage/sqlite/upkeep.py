"""Upkeep: what the server's master process runs in the background so that the file keeps
its shape: the roll-up of finished periods into
the coarser resolutions, the expiry of what each resolution's retention no longer covers,
the pruning of pods with nothing left, and the WAL's checkpoint.

Each step is its own short transaction (`connections.Connections.transaction`): a period is
rolled up a chunk of entities at a time and expired a few periods at a time, so that ingest
waits for one chunk at most. rollup_state says up to where each resolution is done,
rollup_stale which entities' periods late samples changed (marked by `writer`: only theirs
are rolled up again, once a round finds no late write into the period since the previous
one: a backlog arriving is rolled up once, when it has moved on, not after each write),
rollup_doing which periods a stop left half done and rollup_dirty those to do again whole;
each period's rollup row holds the `STATS` of each column (`summary` computes a chunk's at
once), packed by `codec`, which `reader` answers long spans from. Rolling an hour up adds it
to its pods' and containers' usage sketches (`usage`); the hours rolled up before the store
kept sketches are added an hour a round (usage_backfill).
"""

import json
import time
from collections import defaultdict

from cloudmon.storage.base import BUCKET, RESOLUTIONS, bucket_of, merged_stats, stats_of
from cloudmon.storage.model import EntityKind, columns
from cloudmon.storage.sqlite import sealed, summary, usage
from cloudmon.storage.sqlite.codec import pack_stats, row_values, unpack_stats
from cloudmon.storage.sqlite.connections import StorePart
from cloudmon.storage.sqlite.schema import ROLLUP_TABLE

ROLLUP_GRACE = 60  # seconds after a minute ends before it is rolled up: agents send late
_ROLLUP_CHUNK = 1500  # rows summarised per transaction: about 30 ms on 2 cores
_SEAL_BUDGET = 0.25  # seconds of sealing a round, the rest left to the next rounds
_MEMBER_KIND = {
    "node_sample": EntityKind.NODE,
    "pod_sample": EntityKind.POD,
    "ctr_sample": EntityKind.CONTAINER,
}
# Per resolution, the seconds a period late samples keep changing waits at most before it is
# rolled up again (an hour is rolled up from all its minutes: 60 times the rows of one).
LATE_WAIT = {60: 300, 3600: 3600}


class Upkeep(StorePart):
    """Rollups, sealing, expiry and checkpoints of one store."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._head_rows: dict[tuple, int] = {}  # per piece to seal, its head rows last round
        # per period late samples changed: its late writes last round, and since when seen
        self._late_writes: dict[tuple[int, int], tuple[int, float]] = {}

    def roll_up(self, wait_for_late: bool = True) -> int:
        """Summarise finished periods into the coarser resolutions; returns periods done.
        Without `wait_for_late`, periods late samples changed are rolled up again at once (a
        store at its size: their raw rows cannot be deleted until they are)."""
        periods = 0
        # Periods a stop left half rolled up are done again.
        self._db.transaction(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO rollup_dirty SELECT res, bucket FROM rollup_doing"
            )
        )
        settled = self._settled(wait_for_late)
        for res, source in zip(RESOLUTIONS[1:], RESOLUTIONS, strict=False):
            while (
                job := self._db.transaction(lambda conn, r=res: self._begin(conn, r, settled))
            ) is not None:
                self._roll_up_period(res, source, *job)
                periods += 1
        return periods + self.backfill_usage()

    def backfill_usage(self) -> int:
        """Add the oldest hour usage_backfill holds to its pods' and containers' days, from
        their 1 min rollups, a chunk of entities per transaction; the hours added (0 or 1).
        An entity's day that holds the hour already keeps it as it is."""
        reader = self._db.reader()
        row = reader.execute("SELECT next, until FROM usage_backfill").fetchone()
        if row is None:
            return 0
        oldest = self._oldest(reader, 60)  # minutes expired meanwhile are not to be read
        hour = row[0] if oldest is None else max(row[0], oldest // 3600 * 3600)
        if oldest is None or hour >= row[1]:
            self._db.transaction(lambda conn: conn.execute("DELETE FROM usage_backfill"))
            return 0
        width = max(1, _ROLLUP_CHUNK // 60)
        for table in usage.KINDS:
            low, high = sealed.id_range(reader, ROLLUP_TABLE[table], 60, hour, 3600)
            for first in range(low or 0, (high or -1) + 1, width):
                self._db.transaction(
                    lambda conn, t=table, i=range(first, first + width): _sketch_missing(
                        conn, t, hour, i
                    )
                )
        self._db.transaction(
            lambda conn: conn.execute("UPDATE usage_backfill SET next = ?", (hour + 3600,))
        )
        return 1

    def seal(self) -> int:
        """Seal the pieces of each resolution that ended `sealed.SEAL_AFTER` ago, that the
        coarser resolution has rolled up and that took no row since the previous round (a
        backlog still arriving into a piece is sealed once, when it has moved on), some
        entities per transaction; returns the rows sealed. Pieces past the retention are left
        for `expire`."""
        began = time.monotonic()
        reader = self._db.reader()
        state = dict(reader.execute("SELECT res, done FROM rollup_state"))
        now = int(self._clock())
        rows = 0
        seen = {}
        for res, coarser in zip(RESOLUTIONS, (*RESOLUTIONS[1:], None), strict=True):
            horizon = now - sealed.SEAL_AFTER
            if coarser is not None:
                horizon = min(horizon, state.get(coarser, 0))
            expired = bucket_of(now - self._retention[res])
            for table in ROLLUP_TABLE:
                head = table if res == BUCKET else ROLLUP_TABLE[table]
                for piece in sealed.pieces_before(reader, head, res, horizon):
                    if piece + sealed.PIECE[res] <= expired:
                        continue
                    key = (head, res, piece)
                    seen[key] = sealed.head_count(reader, head, res, piece)
                    # Within a budget a round, so that the next rollups are not held up;
                    # one piece a round at least, however busy the machine.
                    if self._head_rows.get(key) == seen[key] and (
                        not rows or time.monotonic() - began < _SEAL_BUDGET
                    ):
                        rows += self._seal_piece(head, res, piece)
                        del seen[key]
        self._head_rows = seen
        return rows

    def _seal_piece(self, table: str, res: int, piece: int) -> int:
        """A piece sealed some entities per transaction, each batch's chunks encoded before
        the transaction, so that ingest waits for their writing only."""
        reader = self._db.reader()
        rows = 0
        for batch in sealed.batches(sealed.ids_to_seal(reader, table, res, piece), res):
            sealing = sealed.Sealing(table, res, piece, batch)
            sealing.read(reader)
            rows += self._db.transaction(sealing.write)
            # Sealing rewrites many pages: the WAL is copied back rather than left to grow.
            self._db.checkpoint()
        return rows

    def _settled(self, wait: bool) -> set[tuple[int, int]]:
        """The periods (resolution, start) late samples changed that took no late write since
        the previous round, or have waited their `LATE_WAIT`; a coarser period only once
        every finer one within it is."""
        now = self._clock()
        late = self._db.reader().execute("SELECT res, bucket, writes FROM rollup_late")
        seen = {}
        settled = set()
        for res, bucket, writes in late:
            before, since = self._late_writes.get((res, bucket), (None, now))
            seen[res, bucket] = (writes, since)
            if not wait or before == writes or now - since >= LATE_WAIT[res]:
                settled.add((res, bucket))
        waiting = seen.keys() - settled
        # A coarser period rolled up before a finer one within it would miss its change.
        settled -= {
            (res, bucket)
            for res, bucket in settled
            if any(finer < res and start // res * res == bucket for finer, start in waiting)
        }
        self._late_writes = {key: seen[key] for key in seen.keys() - settled}
        return settled

    def _begin(self, conn, res: int, settled: set) -> tuple[int, dict | None] | None:
        """The next period of a resolution to roll up, and of which entities (None: all):
        a whole period to do again, else the entities late samples changed in a `settled`
        one, else the next finished period, marked done so that samples arriving from now on
        mark it changed again; None when there is none."""
        entities = None
        row = conn.execute("SELECT bucket FROM rollup_dirty WHERE res = ?", (res,)).fetchone()
        stale = next((bucket for r, bucket in sorted(settled) if r == res), None)
        if row is not None:
            conn.execute("DELETE FROM rollup_dirty WHERE res = ? AND bucket = ?", (res, row[0]))
            period = row[0]
        elif stale is not None:
            settled.discard((res, stale))
            period = stale
            where = "WHERE res = ? AND bucket = ?"
            marked = conn.execute(f"SELECT tbl, id FROM rollup_stale {where}", (res, period))
            entities = _entities(conn, res, period, marked.fetchall())
            conn.execute(f"DELETE FROM rollup_stale {where}", (res, period))
            conn.execute(f"DELETE FROM rollup_late {where}", (res, period))
        else:
            period = self._due(conn, res)
            if period is None:
                return None
            conn.execute(
                "INSERT OR REPLACE INTO rollup_state (res, done) VALUES (?, ?)",
                (res, period + res),
            )
        # A stop before the period is done leaves it here: all of it is done again.
        conn.execute("INSERT OR IGNORE INTO rollup_doing VALUES (?, ?)", (res, period))
        return period, entities

    def _due(self, conn, res: int) -> int | None:
        """The next finished period of a resolution not rolled up yet."""
        source = RESOLUTIONS[RESOLUTIONS.index(res) - 1]
        state = dict(conn.execute("SELECT res, done FROM rollup_state"))
        if source == BUCKET:
            horizon = int(self._clock() - ROLLUP_GRACE) // res * res
        elif source in state:
            horizon = state[source] // res * res
        else:
            return None
        done = state.get(res)
        if done is None:
            oldest = self._oldest(conn, source)
            if oldest is None:
                return None
            done = oldest // res * res
        return done if done < horizon else None

    def _roll_up_period(self, res: int, source: int, period: int, entities: dict | None) -> None:
        """Summarise a period (of some entities: ids per table) a chunk of entities per
        transaction, so that ingest waits for one chunk at most."""
        width = max(1, _ROLLUP_CHUNK * source // res)  # entities: rows of each, res // source
        for table in ROLLUP_TABLE:
            if entities is not None:
                ids = entities.get(table, [])
                chunks = [ids[at : at + width] for at in range(0, len(ids), width)]
            else:
                source_table = table if source == BUCKET else ROLLUP_TABLE[table]
                low, high = sealed.id_range(self._db.reader(), source_table, source, period, res)
                chunks = [range(f, f + width) for f in range(low or 0, (high or -1) + 1, width)]
            for ids in chunks:
                self._db.transaction(
                    lambda conn, t=table, i=ids: self._summarise(conn, res, source, period, t, i)
                )
        self._db.transaction(
            lambda conn: conn.execute(
                "DELETE FROM rollup_doing WHERE res = ? AND bucket = ?", (res, period)
            )
        )

    def _oldest(self, conn, res: int) -> int | None:
        found = []
        for table in ROLLUP_TABLE:
            (oldest, _) = sealed.held(conn, table if res == BUCKET else ROLLUP_TABLE[table], res)
            if oldest is not None:
                found.append(oldest)
        return min(found, default=None)

    def _summarise(self, conn, res: int, source: int, period: int, table: str, ids) -> None:
        """The rollups of one period of one table's entities: ids a range, or a list."""
        clusters = {gid for (gid,) in conn.execute("SELECT id FROM grp WHERE kind = 0")}
        rollup = ROLLUP_TABLE[table]
        which, chosen = _chosen(ids)
        found = _rows(
            conn, table if source == BUCKET else rollup, source, period, res, which, chosen
        )
        if table == "grp_sample":
            summaries = {
                eid: pack_stats(_group_stats(_group_kind(eid, clusters), source, blobs))
                for eid, blobs in found.items()
            }
        elif found:
            width = len(columns(_MEMBER_KIND[table]))
            of = summary.of_rows if source == BUCKET else summary.of_rollups
            summaries = of(found, width)
        else:
            summaries = {}
        conn.execute(
            f"DELETE FROM {rollup} WHERE res = ? AND bucket = ? AND {which}", (res, period, *chosen)
        )
        gone = sealed.ids_at(conn, rollup, res, period, which, chosen) - summaries.keys()
        sealed.delete(conn, rollup, res, period, sorted(gone))
        conn.executemany(
            f"INSERT INTO {rollup} (res, bucket, id, v) VALUES (?, ?, ?, ?)",
            [(res, period, eid, packed) for eid, packed in summaries.items()],
        )
        if res == 3600 and table in usage.KINDS:
            usage.record_hour(conn, table, period, which, chosen, found)

    def expire(self) -> int:
        """Delete what each resolution's retention no longer covers; returns rows deleted."""
        now = self._clock()
        state = dict(self._db.reader().execute("SELECT res, done FROM rollup_state"))
        deleted = 0
        for res, coarser in zip(RESOLUTIONS, (*RESOLUTIONS[1:], None), strict=True):
            before = bucket_of(now - self._retention[res])
            if coarser is not None:
                # Nothing is deleted before the coarser resolution holds its summary.
                if coarser not in state:
                    continue
                before = min(before, state[coarser])
            for table in sealed.dependents_first(ROLLUP_TABLE):
                rows_of = table if res == BUCKET else ROLLUP_TABLE[table]
                deleted += self._delete_before(rows_of, res, before)
        oldest = bucket_of(now - self._retention[RESOLUTIONS[-1]])
        deleted += self._db.transaction(lambda conn: usage.expire_before(conn, oldest))
        return deleted + self._prune(bucket_of(now - max(self._retention.values())))

    def _prune(self, before: int) -> int:
        """Forget pods, and their containers, with no sample left in any resolution. A pod
        never comes back (a new one has a new UID); nodes, namespaces and deployments are
        few and kept."""

        def prune(conn) -> int:
            pods = "SELECT id FROM pod WHERE last_bucket < ?"
            gone = conn.execute(f"DELETE FROM ctr WHERE pod IN ({pods})", (before,)).rowcount
            return gone + conn.execute("DELETE FROM pod WHERE last_bucket < ?", (before,)).rowcount

        return self._db.transaction(prune)

    def _delete_before(self, table: str, res: int, before: int) -> int:
        # Short transactions, so that ingest waits for one at most.
        deleted, taken = 0, sealed.DROP_BYTES
        while taken >= sealed.DROP_BYTES:
            rows, taken = self._db.transaction(
                lambda conn: sealed.drop(conn, table, res, before, trim=False)
            )
            deleted += rows
        return deleted


def _chosen(ids) -> tuple[str, tuple]:
    """The SQL condition on id choosing ids (a range, or a list), and its parameters."""
    if isinstance(ids, range):
        return "id >= ? AND id < ?", (ids.start, ids.stop)
    return "id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)


def _rows(conn, table: str, res: int, period: int, length: int, which, chosen) -> dict:
    """The rows of a table's resolution in [period, period + length) of the chosen entities
    (`_chosen`), by id, each entity's in bucket order."""
    # Each bucket named, so that SQLite looks the ids up in each rather than read the whole
    # period for every chunk; in their order: each entity's STATS are merged period after
    # period.
    buckets = list(range(period, period + length, res))
    found: dict[int, list] = defaultdict(list)
    for eid, blob in sealed.period_rows(conn, table, res, buckets, which, chosen):
        found[eid].append(blob)
    return found


def _sketch_missing(conn, table: str, hour: int, ids: range) -> None:
    """Add an hour to the chosen entities' days that do not hold it, from its 1 min rollups."""
    which, chosen = _chosen(ids)
    found = _rows(conn, ROLLUP_TABLE[table], 60, hour, 3600, which, chosen)
    usage.record_hour(conn, table, hour, which, chosen, found, missing=True)


def _group_stats(kind: EntityKind, source: int, blobs: list[bytes]) -> list:
    """A group's STATS of a period, column by column, from its rows of the finer
    resolution."""
    if source == BUCKET:
        rows_of = zip(*(row_values(kind, blob) for blob in blobs), strict=True)
        return [stats_of(values) for values in rows_of]
    width = len(columns(kind))
    rows_of = zip(*(unpack_stats(blob, width) for blob in blobs), strict=True)
    return [merged_stats(periods) for periods in rows_of]


def _group_kind(eid: int, clusters: set[int]) -> EntityKind:
    """A group's kind as its rollups are computed: a deployment's sum is a namespace's."""
    return EntityKind.CLUSTER if eid in clusters else EntityKind.NAMESPACE


def _entities(conn, res: int, period: int, marked: list[tuple[str, int]]) -> dict[str, list]:
    """The ids per sample table of the entities marked stale in a period: a node's own, its
    pods' in the period and their containers'; a pod's and its containers'; a group's."""
    ids: dict[str, set[int]] = {table: set() for table in ROLLUP_TABLE}
    for table, eid in marked:
        ids[table].add(eid)
    for node in ids["node_sample"]:
        pods = conn.execute(
            "SELECT id FROM pod WHERE node = (SELECT name FROM node WHERE id = ?)"
            " AND last_bucket >= ? AND first_bucket < ?",
            (node, period, period + res),
        )
        ids["pod_sample"].update(pid for (pid,) in pods)
    containers = conn.execute(
        "SELECT id FROM ctr WHERE pod IN (SELECT value FROM json_each(?))",
        (json.dumps(list(ids["pod_sample"])),),
    )
    ids["ctr_sample"].update(cid for (cid,) in containers)
    return {table: sorted(found) for table, found in ids.items()}
