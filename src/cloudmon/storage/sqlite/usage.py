"""The usage tier: each pod's and container's `usage.Days` sketch of each UTC day, in
usage_day, which right-sizing reads.

The upkeep adds an hour to its entities' days as it rolls the hour up from their 1 min
rollups (`record_hour`). An hour a day already holds (rolled up again: late samples, or a
stop half way through) cannot be added twice: that day is made again from all its 1 min rows.
Days go with the 1 h rollups, as old (`expire_before`) or to keep the store within its size.
"""

import json
from collections.abc import Sequence

import numpy as np

from cloudmon.storage.base import STATS
from cloudmon.storage.model import EntityKind, columns
from cloudmon.storage.sqlite import sealed, summary
from cloudmon.storage.sqlite.schema import ROLLUP_TABLE
from cloudmon.storage.usage import COUNTERS, METRICS, Days

DAY = 86400
KINDS = {"pod_sample": EntityKind.POD, "ctr_sample": EntityKind.CONTAINER}
_SUM, _COUNT, _MIN, _MAX = (STATS.index(name) for name in ("sum", "count", "min", "max"))


def record_hour(
    conn, table: str, period: int, which: str, chosen, found: dict[int, list], missing=False
):
    """Add an hour (starting at `period`) of the chosen entities (`which`, an SQL condition
    on id, and its parameters) to their days, from their 1 min rollup rows `found` (per id,
    in minute order). A day that holds the hour already is made again, or, if `missing`,
    kept as it is."""
    day, hour = period // DAY * DAY, 1 << (period % DAY // 3600)
    held = conn.execute(
        f"SELECT id, hours, v FROM usage_day WHERE tbl = ? AND day = ? AND {which}",
        (table, day, *chosen),
    ).fetchall()
    again = {eid: hours for eid, hours, _ in held if hours & hour}
    if missing:
        found = {eid: rows for eid, rows in found.items() if eid not in again}
        again = {}
    elif again:
        _make_again(conn, table, day, (max(again.values()) | hour).bit_length(), sorted(again))
    added = [eid for eid in found if eid not in again]
    if not added:
        return
    earlier = {eid: (hours, v) for eid, hours, v in held if eid in found and eid not in again}
    hours = Days.of_minutes(*_minutes(table, [found[eid] for eid in added]), len(added), hour)
    if earlier:
        before = Days.unpack([earlier[eid][1] for eid in earlier], [h for h, _ in earlier.values()])
        place = {eid: at for at, eid in enumerate(added)}
        hours = hours.joined(before).summed(
            np.r_[np.arange(len(added)), [place[eid] for eid in earlier]], len(added)
        )
    write(conn, table, day, added, hours)


def _make_again(conn, table: str, day: int, hours: int, ids: list[int]) -> None:
    """Entities' days made again from their 1 min rows of its first `hours` hours."""
    found: dict[int, list] = {eid: [] for eid in ids}
    which = "id IN (SELECT value FROM json_each(?))"
    rollup = ROLLUP_TABLE[table]
    for span in range(day, day + hours * 3600, sealed.SPAN[60]):
        buckets = range(span, min(span + sealed.SPAN[60], day + hours * 3600), 60)
        for eid, blob in sealed.period_rows(conn, rollup, 60, buckets, which, (json.dumps(ids),)):
            found[eid].append(blob)
    gone = [eid for eid, rows in found.items() if not rows]
    conn.executemany(
        "DELETE FROM usage_day WHERE tbl = ? AND day = ? AND id = ?",
        [(table, day, eid) for eid in gone],
    )
    kept = [eid for eid in ids if found[eid]]
    if kept:
        rows = _minutes(table, [found[eid] for eid in kept])
        write(conn, table, day, kept, Days.of_minutes(*rows, len(kept), (1 << hours) - 1))


def _minutes(table: str, rows: Sequence[list[bytes]]):
    """(row, minutes, counters) of `Days.of_minutes` from each entity's 1 min rollup rows."""
    kind = KINDS[table]
    picked = [columns(kind).index(name) for name in (*METRICS, *COUNTERS)]
    blobs = [blob for entity in rows for blob in entity]
    stats = summary.decode(blobs, len(columns(kind)), len(STATS), picked)
    with np.errstate(invalid="ignore", divide="ignore"):
        cpu = stats[:, 0, _SUM] / stats[:, 0, _COUNT]
    minutes = np.stack([cpu, stats[:, 1, _MAX]], axis=1)
    counters = stats[:, len(METRICS) :][..., [_MIN, _MAX]]
    row = np.repeat(np.arange(len(rows)), [len(entity) for entity in rows])
    return row, minutes, counters


def write(conn, table: str, day: int, ids: list[int], days: Days) -> None:
    """Entities' days (`Days` rows in the order of `ids`), replacing those held."""
    conn.executemany(
        "INSERT OR REPLACE INTO usage_day (tbl, day, id, hours, v) VALUES (?, ?, ?, ?, ?)",
        [
            (table, day, eid, hours, blob)
            for eid, hours, blob in zip(ids, days.hours.tolist(), days.pack(), strict=True)
        ],
    )


def read(conn, table: str, first: int, last: int, ids: Sequence[int] | None = None):
    """The ids of the entities with days from the day of `first` to that of `last` (all, or
    these) and their days summed: `Days` in the order of the ids."""
    sql = "SELECT id, hours, v FROM usage_day WHERE tbl = ? AND day >= ? AND day <= ?"
    params: list = [table, first // DAY * DAY, last // DAY * DAY]
    if ids is not None:
        sql += " AND id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(list(ids)))
    rows = conn.execute(sql, params).fetchall()
    eids = np.array([eid for eid, _, _ in rows], np.int64)
    found, into = np.unique(eids, return_inverse=True)
    days = Days.unpack([blob for *_, blob in rows], [hours for _, hours, _ in rows])
    return found.tolist(), days.summed(into, len(found))


def expire_before(conn, before: int) -> int:
    """Delete the days that end by `before`; the rows deleted."""
    return conn.execute("DELETE FROM usage_day WHERE day + ? <= ?", (DAY, before)).rowcount
