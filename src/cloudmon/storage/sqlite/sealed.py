"""Sealed spans: rows of finished spans moved out of the head tables into compressed chunks,
one per entity and span (`chunks`), and the reads that see both.

The head tables (node_sample, pod_sample, ctr_sample, grp_sample and their *_rollup tables)
take every write: samples as they come, late ones too, and the rollups. A chunk holds an
entity's rows of a span (`SPAN`: an hour of 10 s buckets, 2 hours of 1 min periods, 5 days of
hours), sealed piece by piece (`PIECE`): once a piece has ended `SEAL_AFTER` ago, the coarser
resolution has rolled it up and it takes no more rows, `upkeep` seals it (`Sealing`): each
entity's rows of it merged into its chunk of the span and deleted from the head. A row
written later into a sealed piece (a late sample, a period rolled up again) stays in the head
and takes the place of the chunk's row of the same bucket (`entity_rows`, `lookup`: the
head's row wins) until it is sealed in turn. A row deleted
from a sealed span is taken out of its chunk at once (`delete`): it is rare (a pod that left
its node's report of a bucket).

A container's chunks are kept against its pod's chunk of the same span (`chunks`' reference):
a pod's cgroup holds its containers' and the pause process's, so a pod of one container
repeats most of its container's figures, and those cost a few bits a value against them. So
a container's chunk is read with its pod's, and whatever rewrites a pod's chunk encodes again
the chunks of its containers that were kept against rows it changed or took out
(`_write`); its containers' chunks are sealed after it and dropped before it.

Every read of a table's rows goes through here; the rest of the store does not know where a
row lies.
"""

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

import numpy as np

from cloudmon.storage.base import BUCKET, STATS
from cloudmon.storage.model import EntityKind, columns
from cloudmon.storage.sqlite import chunks, summary
from cloudmon.storage.sqlite.codec import WIDEST, read_header

# The span of a chunk at each resolution; the pieces it is sealed in, each merged into the
# chunk once it has ended SEAL_AFTER ago (late samples from within this time are written and
# rolled up in the head alone).
SPAN = {BUCKET: 3600, 60: 2 * 3600, 3600: 5 * 86400}
PIECE = {BUCKET: 900, 60: 1800, 3600: 86400}
SEAL_AFTER = 900
# The period of a sealed tier the size bound deletes as one (`size`), some chunks a
# transaction: a whole chunk of raw rows, a piece of 1 min rollups, an hour of hours.
DROPPED = {BUCKET: 3600, 60: 1800, 3600: 3600}
# Bytes of chunks a transaction drops (`drop_before`), past which the rest waits for the next:
# deleting a BLOB writes its pages to the WAL, which counts against the size bound.
DROP_BYTES = 1 << 20
_SEAL_ROWS = 3600  # rows sealed per transaction: about 50 ms on this machine's cores


# The pod table of each container table, and where each container column lies in a pod's.
POD_TABLE = {"ctr_sample": "pod_sample", "ctr_rollup": "pod_rollup"}
_CONTAINER_TABLE = {pod: container for container, pod in POD_TABLE.items()}
_IN_POD = [columns(EntityKind.POD).index(name) for name in columns(EntityKind.CONTAINER)]


def dependents_first(tables: Iterable[str]) -> list[str]:
    """Tables in the order their rows are dropped: a container table before its pod table."""
    return sorted(tables, key=lambda table: table in _CONTAINER_TABLE)


def _each(table: str) -> int:
    """The figures a row of a table holds per column: one a sample, `STATS` a rollup."""
    return 1 if table.endswith("_sample") else len(STATS)


def _reference(table: str, rows: list[tuple]) -> chunks.Reference:
    """What a container table's chunk is kept against: its pod's rows (bucket, v, extra) of
    its span, in bucket order."""
    buckets = [bucket for bucket, _, _ in rows]
    return _reference_of(*_pod_figures(table, buckets, [v for _, v, _ in rows]))


def _pod_figures(table: str, buckets: Sequence[int], blobs: Sequence[bytes]) -> tuple:
    """Pods' rows of a container table's pod table as arrays: their buckets, and (row,
    container column, figure) their figures of each container column, NaN where missing."""
    each = _each(table)
    if not len(blobs):
        return np.zeros(0, np.int64), np.empty((0, len(_IN_POD), each))
    figures = summary.decode(list(blobs), len(columns(EntityKind.POD)), each, _IN_POD)
    return np.asarray(buckets, np.int64), figures


def _reference_of(buckets: np.ndarray, figures: np.ndarray) -> chunks.Reference:
    """What a container's chunk is kept against, from its pod's rows of its span
    (`_pod_figures`, in bucket order): each container column's figures in the pod's."""
    each = figures.shape[2]

    def reference(wanted: np.ndarray, head: bytes) -> np.ndarray:
        mask, _ = read_header(head)
        present = [at for at in range(len(_IN_POD)) if mask >> at & 1]
        found = np.full((len(wanted), len(present), each), np.nan)
        if len(buckets):
            at = np.minimum(np.searchsorted(buckets, wanted), len(buckets) - 1)
            hit = buckets[at] == wanted
            found[hit] = figures[at[hit]][:, present]
        return found.reshape(len(wanted), -1)

    return reference


def _pod_chunks(conn, table: str, res: int, spans: Iterable[tuple[int, int]]) -> dict:
    """{(container id, start): its pod's chunk} of a container table's spans (id, start)."""
    spans = set(spans)
    found = conn.execute(
        "SELECT c.id, ch.start, ch.v FROM ctr c JOIN chunk ch ON ch.tbl = ? AND ch.res = ?"
        " AND ch.id = c.pod WHERE c.id IN (SELECT value FROM json_each(?))"
        " AND ch.start IN (SELECT value FROM json_each(?))",
        (
            POD_TABLE[table],
            res,
            json.dumps(sorted({eid for eid, _ in spans})),
            json.dumps(sorted({start for _, start in spans})),
        ),
    )
    return {(eid, start): v for eid, start, v in found if (eid, start) in spans}


def _references(conn, table: str, res: int, spans: Sequence[tuple[int, int]]) -> list:
    """What the chunks of spans (id, start) of a table are kept against: a container's, its
    pod's rows of the span (none where its pod has no chunk there); None for other tables."""
    if table not in POD_TABLE:
        return [None] * len(spans)
    return _references_of(table, spans, _pod_chunks(conn, table, res, spans))


def _references_of(table: str, spans: Sequence[tuple[int, int]], pods: dict) -> list:
    """The references of a container table's spans from their pods' chunks (`_pod_chunks`),
    all decoded at once, each once, straight to their figures."""
    each = _each(table)
    blobs = list(dict.fromkeys(pods.values()))
    found: list[tuple[list, list]] = [([], []) for _ in blobs]
    for at, buckets, head, words in chunks.decode_blocks(blobs):
        figures = np.full((len(buckets), len(_IN_POD), each), np.nan)
        # A wide row's header goes on in its first word: rows of one block may differ there.
        wide = read_header(head + bytes(8))[1] > len(head)
        highs = words[:, 0] if wide else np.zeros(len(buckets), np.uint64)
        for high in np.unique(highs).tolist():
            rows = highs == high
            header = head + high.to_bytes(8, "little") if wide else head
            mask, _ = read_header(header)
            present = [column for column in range(WIDEST) if mask >> column & 1]
            values = words[rows][:, int(wide) :].view(np.float64)
            values = values.reshape(int(rows.sum()), len(present), each)
            for mine, column in enumerate(_IN_POD):
                if mask >> column & 1:
                    figures[rows, mine] = values[:, present.index(column)]
        found[at][0].append(buckets)
        found[at][1].append(figures)
    made = {}
    for blob, (buckets, figures) in zip(blobs, found, strict=True):
        buckets, figures = np.concatenate(buckets), np.concatenate(figures)
        order = np.argsort(buckets, kind="stable")  # a chunk's blocks are of one shape each
        made[blob] = _reference_of(buckets[order], figures[order])
    none = _reference(table, [])
    return [made.get(pods.get(span), none) for span in spans]


@contextmanager
def _one_snapshot(conn):
    """Reads that see the file as one moment left it (a container's chunk and its pod's, which
    a transaction may rewrite together): a read transaction, unless one is under way."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _decoded(conn, table: str, res: int, eid: int, start: int, blob: bytes) -> list[tuple]:
    """The rows (bucket, v, extra) of one of a table's chunks."""
    return chunks.decode(blob, reference=_references(conn, table, res, [(eid, start)])[0])


def _res_match(table: str, res: int) -> str:
    """The condition that picks a resolution's rows of a head table."""
    return "" if table.endswith("_sample") else f"res = {res} AND "


def _header(table: str) -> int:
    """The header bytes of a table's rows (`codec`): a group's tag, else a column mask."""
    return 1 if table == "grp_sample" else 4


def _extra(table: str) -> str:
    """The column beside v a table's rows carry: a node's pods."""
    return "pods" if table == "node_sample" else "NULL"


def _chunks(conn, table: str, res: int, first: int, last: int, ids: Sequence[int] | None):
    """The chunk rows (id, start, first, last, v) of a table's entities (all: None) whose
    span meets [first, last]."""
    span = SPAN[res]
    sql = (
        "SELECT id, start, first, last, v FROM chunk WHERE tbl = ? AND res = ?"
        " AND start >= ? AND start <= ? AND last >= ? AND first <= ?"
    )
    params: list = [table, res, first // span * span, last, first, last]
    if ids is not None:
        sql += " AND id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(list(ids)))
    return conn.execute(sql, params).fetchall()


def _sealed(conn, table: str, res: int, first: int, last: int, ids=None, size=None):
    """The sealed rows in [first, last] of these entities (all: None), their chunks decoded
    at once: arrays of each row's entity and bucket, a list of its v (or of its first `size`
    bytes) and one of its extra."""
    with _one_snapshot(conn):
        found = _chunks(conn, table, res, first, last, ids)
        references = _references(conn, table, res, [(eid, start) for eid, start, *_ in found])
    rows = chunks.decode_many([blob for *_, blob in found], size, (first, last), references)
    eids = np.array([eid for eid, *_ in found], np.int64)[rows.chunk]
    return eids, rows.buckets, rows.values, rows.extras


def sealed_rows(conn, table: str, res: int, first: int, last: int, ids=None):
    """{(id, bucket): (v, extra)} of the sealed rows in [first, last] of these entities (all:
    None)."""
    eids, buckets, values, extras = _sealed(conn, table, res, first, last, ids)
    keys = zip(eids.tolist(), buckets.tolist(), strict=True)
    return dict(zip(keys, zip(values, extras, strict=True), strict=True))


def entity_rows(conn, table: str, res: int, first: int, last: int, eid: int) -> list[tuple]:
    """(bucket, v) of one entity's rows in [first, last], in bucket order."""
    _, buckets, blobs = entities_rows(conn, table, res, first, last, [eid])
    return list(zip(buckets.tolist(), blobs, strict=True))


def entities_rows(conn, table: str, res: int, first: int, last: int, ids: Sequence[int], size=None):
    """The rows in [first, last] of these entities, in entity then bucket order: arrays of
    each row's entity (its place in `ids`) and bucket, and a list of its BLOB, or of its
    first `size` bytes."""
    eids, buckets, values, _ = _sealed(conn, table, res, first, last, ids, size)
    head = _head_rows(conn, table, res, first, last, ids, size)  # after: the head's row wins
    if head:
        head_ids, head_buckets, head_values = zip(*head, strict=True)
        eids = np.concatenate([eids, np.array(head_ids, np.int64)])
        buckets = np.concatenate([buckets, np.array(head_buckets, np.int64)])
        values += head_values
    wanted = np.asarray(ids, np.int64)
    by_id = np.argsort(wanted)
    at = np.minimum(np.searchsorted(wanted, eids, sorter=by_id), len(wanted) - 1)
    entity = by_id[at]
    rows = np.flatnonzero(wanted[entity] == eids)  # the head's may hold other entities' too
    order = rows[np.lexsort((buckets[rows], entity[rows]))]  # stable: the head's row last
    entity, buckets = entity[order], buckets[order]
    last_of_bucket = np.ones(len(order), bool)
    last_of_bucket[:-1] = (entity[1:] != entity[:-1]) | (buckets[1:] != buckets[:-1])
    order = order[last_of_bucket]
    return entity[last_of_bucket], buckets[last_of_bucket], [values[at] for at in order.tolist()]


def _head_rows(conn, table: str, res: int, first: int, last: int, ids: Sequence[int], size=None):
    """(id, bucket, v or its first `size` bytes) of some entities' head rows in [first, last],
    a bucket at a time (the tables are keyed by bucket first); where they are most of the
    table's entities, those of the others too."""
    first, last = _head_held(conn, table, res, first, last)
    if first > last:
        return []
    v = "v" if size is None else f"substr(v, 1, {int(size)})"
    if _most_of(conn, table, res, last, len(ids)):
        # One pass over the span's rows costs less than a lookup of each entity's each bucket.
        return conn.execute(
            f"SELECT id, bucket, {v} FROM {table} WHERE {_res_match(table, res)}bucket >= ?"
            " AND bucket <= ?",
            (first, last),
        ).fetchall()
    res_match = "" if table.endswith("_sample") else f" AND s.res = {res}"
    return conn.execute(
        f"WITH RECURSIVE b(x) AS (SELECT ? UNION ALL SELECT x + {res} FROM b WHERE x < ?)"
        f" SELECT s.id, s.bucket, {v} FROM b JOIN {table} s ON s.bucket = b.x"
        " AND s.id IN (SELECT value FROM json_each(?))" + res_match,
        (first, last - res + 1, json.dumps(list(ids))),
    ).fetchall()


def _most_of(conn, table: str, res: int, bucket: int, wanted: int) -> bool:
    """Whether the entities wanted are most of those with a row in a table's bucket."""
    if wanted < 64:
        return False
    # Counted no further than the answer needs: cheap beside the read that follows.
    query = f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {_res_match(table, res)}bucket = ?"
    query += " LIMIT ?)"
    return conn.execute(query, (bucket, 2 * wanted + 1)).fetchone()[0] <= 2 * wanted


def _head_held(conn, table: str, res: int, first: int, last: int) -> tuple[int, int]:
    """[first, last] narrowed to the buckets the head holds at a resolution, so that a query
    stepping through them does not step through years of nothing."""
    where = "" if table.endswith("_sample") else f" WHERE res = {res}"
    # Two subqueries: SQLite answers a lone min() or max() from the index, both at once by a scan.
    oldest, newest = conn.execute(
        f"SELECT (SELECT min(bucket) FROM {table}{where}), (SELECT max(bucket) FROM {table}{where})"
    ).fetchone()
    if oldest is None:
        return 1, 0
    return max(first, oldest), min(last, newest)


def held(conn, table: str, res: int) -> tuple[int | None, int | None]:
    """The oldest and newest bucket a table holds at a resolution, sealed or not."""
    where = "" if table.endswith("_sample") else f" WHERE res = {res}"
    oldest, newest, sealed_first, sealed_last = conn.execute(
        f"SELECT (SELECT min(bucket) FROM {table}{where}),"
        f" (SELECT max(bucket) FROM {table}{where}),"
        " (SELECT min(first) FROM chunk WHERE tbl = ?1 AND res = ?2),"
        " (SELECT max(last) FROM chunk WHERE tbl = ?1 AND res = ?2)",
        (table, res),
    ).fetchone()
    lows = [b for b in (oldest, sealed_first) if b is not None]
    highs = [b for b in (newest, sealed_last) if b is not None]
    return min(lows, default=None), max(highs, default=None)


def first_sealed(conn, table: str, res: int) -> int | None:
    """The oldest bucket a table's chunks hold at a resolution."""
    return conn.execute(
        "SELECT min(first) FROM chunk WHERE tbl = ? AND res = ?", (table, res)
    ).fetchone()[0]


def lookup(conn, table: str, res: int, bucket: int, ids: Sequence[int], sealed: bool = True):
    """The (id, v, extra) rows of these ids in one bucket or period; with `sealed` false, only
    the head's."""
    found = {
        eid: (eid, v, extra)
        for eid, v, extra in conn.execute(
            f"SELECT id, v, {_extra(table)} FROM {table} WHERE {_res_match(table, res)}"
            "bucket = ? AND id IN (SELECT value FROM json_each(?))",
            (bucket, json.dumps(list(ids))),
        )
    }
    missing = [eid for eid in ids if eid not in found]
    if sealed and missing:
        for (eid, _), (v, extra) in sealed_rows(conn, table, res, bucket, bucket, missing).items():
            found[eid] = (eid, v, extra)
    return list(found.values())


def present(conn, table: str, res: int, first: int, last: int, ids: Iterable[int]) -> set[int]:
    """Those of `ids` with a row, sealed or not, in a bucket or period starting in [first,
    last]."""
    remaining = set(ids)
    found = set()
    for eid, _, low, high, blob in _chunks(conn, table, res, first, last, list(remaining)):
        if eid in found:
            continue
        if (first <= low and high <= last) or any(
            first <= bucket <= last for bucket, _, _ in chunks.decode(blob, 0)
        ):
            found.add(eid)
    remaining -= found
    # The head's buckets from the first one held, in steps growing fourfold: most entities
    # that report at all have a row in the first few.
    at, upto_held = _head_held(conn, table, res, first, last)
    step = 1
    while remaining and at <= upto_held:
        upto = min(upto_held, at + (step - 1) * res)
        hits = _probe(conn, table, res, at, upto, remaining)
        found.update(hits)
        remaining.difference_update(hits)
        at, step = upto + res, step * 4
    return found


def _probe(conn, table: str, res: int, first: int, last: int, ids) -> set[int]:
    """Those of `ids` with a head row in a bucket or period starting in [first, last]."""
    res_match = "" if table.endswith("_sample") else f" AND s.res = {res}"
    rows = conn.execute(
        f"WITH RECURSIVE b(x) AS (SELECT ? UNION ALL SELECT x + {res} FROM b WHERE x < ?)"
        f" SELECT DISTINCT s.id FROM b JOIN {table} s ON s.bucket = b.x{res_match}"
        " AND s.id IN (SELECT value FROM json_each(?))",
        (first, last - res + 1, json.dumps(list(ids))),
    )
    return {eid for (eid,) in rows}


def newest_until(conn, table: str, res: int, eid: int, last: int) -> int | None:
    """An entity's newest bucket up to `last`, sealed or not; None when it has none."""
    where = "" if table.endswith("_sample") else f"res = {res} AND "
    (found,) = conn.execute(
        f"SELECT max(bucket) FROM {table} WHERE {where}id = ? AND bucket <= ?", (eid, last)
    ).fetchone()
    span = SPAN[res]
    for start, high, blob in conn.execute(
        "SELECT start, last, v FROM chunk WHERE tbl = ? AND res = ? AND id = ?"
        " AND first <= ? ORDER BY start DESC",
        (table, res, eid, last),
    ):
        if found is not None and found >= start + span:
            break
        newest = high if high <= last else max(b for b, _, _ in chunks.decode(blob, 0) if b <= last)
        return newest if found is None else max(found, newest)
    return found


def period_rows(conn, table: str, res: int, buckets: Sequence[int], which: str, chosen):
    """(id, v) of the chosen entities' rows in these buckets or periods, in bucket order:
    `which` an SQL condition on id, `chosen` its parameters."""
    head = conn.execute(
        f"SELECT id, bucket, v FROM {table} WHERE {_res_match(table, res)}"
        f"bucket IN (SELECT value FROM json_each(?)) AND {which}",
        (json.dumps(list(buckets)), *chosen),
    ).fetchall()
    sql = (
        "SELECT id, start, first, last, v FROM chunk WHERE tbl = ? AND res = ? AND start = ?"
        f" AND {which}"
    )
    first, last = buckets[0], buckets[-1]
    rows = {(bucket, eid): v for eid, bucket, v in head}
    span = first // SPAN[res] * SPAN[res]
    found = [(eid, blob) for eid, *_, blob in conn.execute(sql, (table, res, span, *chosen))]
    references = _references(conn, table, res, [(eid, span) for eid, _ in found])
    for (eid, blob), reference in zip(found, references, strict=True):
        for bucket, v, _ in chunks.decode(blob, reference=reference):
            if first <= bucket <= last:
                rows.setdefault((bucket, eid), v)
    return [(eid, v) for (_, eid), v in sorted(rows.items())]


def bucket_rows(conn, table: str, res: int, bucket: int) -> list[tuple[int, bytes]]:
    """(id, v) of every entity's row in one bucket or period, sealed or not."""
    head = conn.execute(
        f"SELECT id, v FROM {table} WHERE {_res_match(table, res)}bucket = ?", (bucket,)
    )
    found = {eid: v for (eid, _), (v, _) in sealed_rows(conn, table, res, bucket, bucket).items()}
    found.update(head)
    return sorted(found.items())


def delete(conn, table: str, res: int, bucket: int, ids: Sequence[int]) -> None:
    """The rows of these ids in one bucket or period deleted, from the head and the chunks."""
    conn.executemany(
        f"DELETE FROM {table} WHERE {_res_match(table, res)}bucket = ? AND id = ?",
        [(bucket, eid) for eid in ids],
    )
    for eid, start, _, _, blob in _chunks(conn, table, res, bucket, bucket, ids):
        rows = _decoded(conn, table, res, eid, start, blob)
        kept = [row for row in rows if row[0] != bucket]
        if len(kept) < len(rows):
            _write(conn, table, res, eid, start, kept, rows)


def _write(conn, table: str, res: int, eid: int, start: int, rows: list, was=None) -> None:
    """An entity's chunk of a span, from its rows (none: no chunk); `was` the rows it held
    (read here where the caller has not), so that the chunks of a pod's containers kept
    against rows that change are encoded again."""
    again = _kept_against(conn, table, res, eid, start, was, rows)
    if not rows:
        conn.execute(
            "DELETE FROM chunk WHERE tbl = ? AND res = ? AND id = ? AND start = ?",
            (table, res, eid, start),
        )
    else:
        reference = _references(conn, table, res, [(eid, start)])[0]
        blob = chunks.encode(rows, _header(table), reference)
        conn.execute(
            "INSERT OR REPLACE INTO chunk (tbl, res, id, start, first, last, v)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (table, res, eid, start, rows[0][0], rows[-1][0], blob),
        )
    for cid, container_rows in again:
        _write(conn, _CONTAINER_TABLE[table], res, cid, start, container_rows)


def _kept_against(conn, table: str, res: int, eid: int, start: int, was, rows: list) -> list:
    """(id, rows) of a pod's containers' chunks of a span with a row in a bucket whose pod row
    changes from `was` (None: as its chunk holds them) to `rows`: to be encoded again against
    the new ones; none for other tables."""
    if table not in _CONTAINER_TABLE:
        return []
    now = {bucket: v for bucket, v, _ in rows}
    if was is not None and all(now.get(bucket) == v for bucket, v, _ in was):
        return []
    dependents = conn.execute(
        "SELECT c.id, ch.v FROM ctr c JOIN chunk ch ON ch.tbl = ? AND ch.res = ?"
        " AND ch.id = c.id AND ch.start = ? WHERE c.pod = ?",
        (_CONTAINER_TABLE[table], res, start, eid),
    ).fetchall()
    if not dependents:
        return []
    if was is None:
        (blob,) = conn.execute(
            "SELECT v FROM chunk WHERE tbl = ? AND res = ? AND id = ? AND start = ?",
            (table, res, eid, start),
        ).fetchone() or (None,)
        was = [] if blob is None else chunks.decode(blob)
    touched = {bucket for bucket, v, _ in was if now.get(bucket) != v}
    reference = _reference(_CONTAINER_TABLE[table], was)
    return [
        (cid, chunks.decode(blob, reference=reference))
        for cid, blob in dependents
        if touched.intersection(bucket for bucket, _, _ in chunks.decode(blob, 0))
    ]


def drop(
    conn, table: str, res: int, upto: int, budget: int = DROP_BYTES, trim: bool = True
) -> tuple[int, int]:
    """A table's rows of a resolution before `upto` dropped, oldest first, until `budget`
    bytes of them are: its head rows, then its chunks (`drop_before`). The rows dropped and
    their bytes; those bytes below `budget` when none is left."""
    rows, taken = _drop_head(conn, table, res, upto, budget)
    if taken < budget:
        dropped, sealed_bytes = drop_before(conn, table, res, upto, budget - taken, trim)
        rows, taken = rows + dropped, taken + sealed_bytes
    return rows, taken


def _drop_head(conn, table: str, res: int, upto: int, budget: int) -> tuple[int, int]:
    """A head table's rows of a resolution before `upto` deleted, a bucket at a time from the
    oldest, until `budget` bytes of them are; the rows deleted and their bytes."""
    where = _res_match(table, res)
    rows = taken = 0
    while taken < budget:
        (bucket,) = conn.execute(
            f"SELECT min(bucket) FROM {table} WHERE {where}bucket < ?", (upto,)
        ).fetchone()
        if bucket is None:
            break
        (count, size) = conn.execute(
            f"SELECT count(*), sum(length(v)) FROM {table} WHERE {where}bucket = ?", (bucket,)
        ).fetchone()
        conn.execute(f"DELETE FROM {table} WHERE {where}bucket = ?", (bucket,))
        rows += count
        taken += size
    return rows, taken


def drop_before(
    conn, table: str, res: int, upto: int, budget: int = DROP_BYTES, trim: bool = True
) -> tuple[int, int]:
    """Chunks of a table's resolution before `upto` dropped, oldest first, until `budget`
    bytes of them are (what one transaction writes to the WAL stays small): a chunk whose
    rows all lie before it deleted, with `trim` one that reaches past it trimmed. The rows
    dropped (those of a deleted chunk estimated: its span in buckets) and the chunks' bytes;
    those bytes below `budget` when none is left."""
    where = "first" if trim else "last"
    found = conn.execute(
        "SELECT id, start, first, last, length(v) FROM chunk WHERE tbl = ?1 AND res = ?2"
        f" AND start < ?3 AND {where} < ?3 ORDER BY start",
        (table, res, upto),
    ).fetchall()
    dropped = taken = 0
    for eid, start, first, last, size in found:
        if taken >= budget:
            break
        taken += size
        if last < upto:
            _write(conn, table, res, eid, start, [])
            dropped += (last - first) // res + 1
            continue
        (blob,) = conn.execute(
            "SELECT v FROM chunk WHERE tbl = ? AND res = ? AND id = ? AND start = ?",
            (table, res, eid, start),
        ).fetchone()
        rows = _decoded(conn, table, res, eid, start, blob)
        kept = [row for row in rows if row[0] >= upto]
        dropped += len(rows) - len(kept)
        _write(conn, table, res, eid, start, kept, rows)
    return dropped, taken


def pieces_before(conn, table: str, res: int, horizon: int):
    """The starts of the pieces with head rows that end by `horizon`, oldest first."""
    where = _res_match(table, res)
    span = PIECE[res]
    (at,) = conn.execute(f"SELECT min(bucket) FROM {table} WHERE {where}1").fetchone()
    while at is not None and at // span * span + span <= horizon:
        start = at // span * span
        yield start
        (at,) = conn.execute(
            f"SELECT min(bucket) FROM {table} WHERE {where}bucket >= ?", (start + span,)
        ).fetchone()


def head_count(conn, table: str, res: int, start: int) -> int:
    """The head rows of a piece."""
    return conn.execute(
        f"SELECT count(*) FROM {table} WHERE {_res_match(table, res)}bucket >= ? AND bucket < ?",
        (start, start + PIECE[res]),
    ).fetchone()[0]


def ids_to_seal(conn, table: str, res: int, start: int) -> list[int]:
    """The entities with head rows in a piece."""
    return [
        eid
        for (eid,) in conn.execute(
            f"SELECT DISTINCT id FROM {table} WHERE {_res_match(table, res)}"
            "bucket >= ? AND bucket < ?",
            (start, start + PIECE[res]),
        )
    ]


class Sealing:
    """Some entities' head rows of a piece merged into the chunks of its span (the head's row
    wins where both have a bucket) and deleted from the head: `read` and `encode` what they
    hold (no lock needed), then `write` in the writer's transaction, where an entity whose
    rows changed meanwhile is encoded again."""

    def __init__(self, table: str, res: int, piece: int, ids: Sequence[int]) -> None:
        self.table, self.res, self.start = table, res, piece // SPAN[res] * SPAN[res]
        buckets = json.dumps(list(range(piece, piece + PIECE[res], res)))
        self._matched = (
            f"{_res_match(table, res)}bucket IN (SELECT value FROM json_each(?1))"
            " AND id IN (SELECT value FROM json_each(?2))"
        )
        self._params = (buckets, json.dumps(list(ids)))
        self._read: tuple = ({}, {}, {})
        self._encoded: dict[int, tuple] = {}

    def _state(self, conn) -> tuple[dict, dict, dict]:
        """The entities' head rows {id: {bucket: row}}, chunks {id: v} and, for containers,
        their pods' chunks of the span (`_pod_chunks`)."""
        head: dict[int, dict[int, tuple]] = defaultdict(dict)
        for eid, bucket, v, extra in conn.execute(
            f"SELECT id, bucket, v, {_extra(self.table)} FROM {self.table} WHERE {self._matched}",
            self._params,
        ):
            head[eid][bucket] = (bucket, v, extra)
        existing = dict(
            conn.execute(
                "SELECT id, v FROM chunk WHERE tbl = ? AND res = ? AND start = ?"
                " AND id IN (SELECT value FROM json_each(?))",
                (self.table, self.res, self.start, self._params[1]),
            )
        )
        pods = {}
        if self.table in POD_TABLE:
            pods = _pod_chunks(conn, self.table, self.res, [(eid, self.start) for eid in head])
        return head, existing, pods

    def _references(self, ids: Sequence[int], pods: dict) -> dict:
        """{id: what its chunk is kept against} of some of the entities (`_references_of`)."""
        spans = [(eid, self.start) for eid in ids]
        if self.table not in POD_TABLE:
            return dict.fromkeys(ids)
        return dict(zip(ids, _references_of(self.table, spans, pods), strict=True))

    def _encode(self, rows: dict, existing: bytes | None, reference) -> tuple:
        """An entity's chunk (first, last, v) with its head rows, and the rows its chunk held."""
        was = [] if existing is None else chunks.decode(existing, reference=reference)
        merged = {row[0]: row for row in was} | rows
        ordered = [merged[bucket] for bucket in sorted(merged)]
        blob = chunks.encode(ordered, _header(self.table), reference)
        return (ordered[0][0], ordered[-1][0], blob), was, ordered

    def read(self, conn) -> None:
        """Read and encode the entities' rows (through a reader: no lock held)."""
        with _one_snapshot(conn):
            self._read = head, existing, pods = self._state(conn)
        references = self._references(list(head), pods)
        self._encoded = {
            eid: self._encode(rows, existing.get(eid), references[eid])
            for eid, rows in head.items()
        }

    def write(self, conn) -> int:
        """Write the chunks, delete the head rows, encode again the chunks of a pod's
        containers kept against rows that changed; the rows sealed."""
        head, existing, pods = self._state(conn)
        was_head, was_existing, was_pods = self._read
        changed = [
            eid
            for eid, rows in head.items()
            if eid not in self._encoded
            or rows != was_head.get(eid)
            or existing.get(eid) != was_existing.get(eid)
            or pods.get((eid, self.start)) != was_pods.get((eid, self.start))
        ]
        references = self._references(changed, pods)
        written, again = [], []
        for eid in head:
            encoded = self._encoded.get(eid)
            if eid in references:
                encoded = self._encode(head[eid], existing.get(eid), references[eid])
            chunk, was, ordered = encoded
            written.append((self.table, self.res, eid, self.start, *chunk))
            again += _kept_against(conn, self.table, self.res, eid, self.start, was, ordered)
        # Deleted first, so that the chunks take the pages the rows leave.
        conn.execute(f"DELETE FROM {self.table} WHERE {self._matched}", self._params)
        conn.executemany(
            "INSERT OR REPLACE INTO chunk (tbl, res, id, start, first, last, v)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            written,
        )
        for cid, kept in again:
            _write(conn, _CONTAINER_TABLE[self.table], self.res, cid, self.start, kept)
        return sum(map(len, head.values()))


def batches(ids: Sequence[int], res: int) -> list[Sequence[int]]:
    """Entities in batches of about `_SEAL_ROWS` rows of a piece."""
    width = max(1, _SEAL_ROWS * res // PIECE[res])
    return [ids[at : at + width] for at in range(0, len(ids), width)]


def id_range(conn, table: str, res: int, period: int, length: int) -> tuple:
    """The lowest and highest id with a row, sealed or not, in [period, period + length) of a
    table's resolution; (None, None) when none has one."""
    (low, high, sealed_low, sealed_high) = conn.execute(
        f"SELECT (SELECT min(id) FROM {table} WHERE {_res_match(table, res)}bucket >= ?1"
        " AND bucket < ?2),"
        f" (SELECT max(id) FROM {table} WHERE {_res_match(table, res)}bucket >= ?1"
        " AND bucket < ?2),"
        " (SELECT min(id) FROM chunk WHERE tbl = ?3 AND res = ?4 AND start = ?5"
        " AND first < ?2 AND last >= ?1),"
        " (SELECT max(id) FROM chunk WHERE tbl = ?3 AND res = ?4 AND start = ?5"
        " AND first < ?2 AND last >= ?1)",
        (period, period + length, table, res, period // SPAN[res] * SPAN[res]),
    ).fetchone()
    lows = [i for i in (low, sealed_low) if i is not None]
    highs = [i for i in (high, sealed_high) if i is not None]
    return min(lows, default=None), max(highs, default=None)


def ids_at(conn, table: str, res: int, bucket: int, which: str, chosen) -> set[int]:
    """The chosen entities (`which` an SQL condition on id) with a sealed span around a
    bucket or period."""
    return {
        eid
        for (eid,) in conn.execute(
            "SELECT id FROM chunk WHERE tbl = ? AND res = ? AND start = ? AND first <= ?"
            f" AND last >= ? AND {which}",
            (table, res, bucket // SPAN[res] * SPAN[res], bucket, bucket, *chosen),
        )
    }
