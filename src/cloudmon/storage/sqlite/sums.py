"""Group sums: the namespace, deployment and cluster rows, added up from their members' rows
with `model.sum_columns` (the one definition of a group's sum), never written by ingest.

A bucket's sums are taken once it is closed, SUM_GRACE after it starts, and again when a
late sample has changed it (`Sums.take`, run by `upkeep` in the server's master process),
into grp_sample rows. Wherever a sum is taken, its members' rows are added in the order of
their ids, so the same rows give the same sums to the last bit. Until a bucket's sums are
taken, `reader` adds them up at query time through `Unsummed`: for a few groups one by one
(`_group_sums`), for many all at once (`_bucket_sums`, as `Sums` does).
"""

import operator
from collections import defaultdict
from collections.abc import Sequence

from cloudmon.storage.base import BUCKET, Entity, bucket_of
from cloudmon.storage.model import (
    CLUSTER_SUMS,
    GROUP_COLUMNS,
    NODE_COLUMNS,
    POD_COLUMNS,
    EntityKind,
    sum_columns,
)
from cloudmon.storage.sqlite.codec import pack, unpack
from cloudmon.storage.sqlite.schema import GROUP_KIND

SUM_GRACE = 20  # seconds after a bucket starts before its sums are taken and kept
_FEW_GROUPS = 3  # up to this many groups in one answer, their sums are taken one by one
_NAMESPACE, _DEPLOYMENT = GROUP_KIND[EntityKind.NAMESPACE], GROUP_KIND[EntityKind.DEPLOYMENT]
_GROUPS = "SELECT id, kind, namespace, name FROM grp"
_NODE_ROWS = "SELECT v FROM node_sample WHERE bucket = ? ORDER BY id"
_POD_SUMMED = operator.itemgetter(*(POD_COLUMNS.index(name) for name in GROUP_COLUMNS[:-1]))
_NODE_SUMMED = operator.itemgetter(*(NODE_COLUMNS.index(name) for name in CLUSTER_SUMS))


class _Partials:
    """Sums of one bucket per group id: vectors of column sums ending in a count."""

    def __init__(self) -> None:
        self.rows: dict[int, list[Sequence]] = defaultdict(list)

    def add_pod(self, group_ids: Sequence[int], values: Sequence) -> None:
        summed = (*_POD_SUMMED(values), 1)
        for gid in group_ids:
            self.rows[gid].append(summed)

    def add_node(self, cluster_id: int, values: Sequence) -> None:
        self.rows[cluster_id].append((*_NODE_SUMMED(values), 1))

    def sums(self) -> dict[int, list]:
        """Per group: its vectors' column sums (None where none has a value)."""
        return {gid: sum_columns(rows) for gid, rows in self.rows.items()}


class Sums:
    """Takes and keeps the sums of closed buckets, and of those late samples changed."""

    def __init__(self, db, writer, clock) -> None:
        """`db`: the store's `Connections`; `writer`: its `Writer` (group ids and spans)."""
        self._db = db
        self._writer = writer
        self._clock = clock

    def take(self) -> None:
        """The groups' sums of the buckets past SUM_GRACE, and of those late samples changed."""
        while self._db.transaction(lambda conn: self._redo_dirty(conn, BUCKET)):
            pass
        while self._db.transaction(self._close_next):
            pass

    def _redo_dirty(self, conn, res: int) -> bool:
        query = "SELECT bucket FROM rollup_dirty WHERE res = ? LIMIT 1"
        row = conn.execute(query, (res,)).fetchone()
        if row is None:
            return False
        conn.execute("DELETE FROM rollup_dirty WHERE res = ? AND bucket = ?", (res, row[0]))
        self._sum_bucket(conn, row[0])
        return True

    def _close_next(self, conn) -> bool:
        """Take the sums of the next bucket past SUM_GRACE; False when there is none."""
        horizon = bucket_of(self._clock() - SUM_GRACE)
        row = conn.execute("SELECT done FROM rollup_state WHERE res = ?", (BUCKET,)).fetchone()
        done = row[0] if row else 0
        if done >= horizon:
            return False
        query = "SELECT min(bucket) FROM node_sample WHERE bucket >= ? AND bucket < ?"
        (bucket,) = conn.execute(query, (done, horizon)).fetchone()
        if bucket is not None:
            self._sum_bucket(conn, bucket)
        conn.execute(
            "INSERT OR REPLACE INTO rollup_state (res, done) VALUES (?, ?)",
            (BUCKET, horizon if bucket is None else bucket + BUCKET),
        )
        return bucket is not None

    def _sum_bucket(self, conn, bucket: int) -> None:
        """Keep the sums of every group in one bucket, taken from its pod and node rows."""
        writer = self._writer
        cluster_id = writer.group_id(conn, EntityKind.CLUSTER, "", "", bucket)
        sums = _bucket_sums(
            conn, bucket, cluster_id, lambda ns, name: writer.groups_of(conn, ns, name, bucket)
        )
        conn.execute("DELETE FROM grp_sample WHERE bucket = ?", (bucket,))
        conn.executemany(
            "INSERT OR REPLACE INTO grp_sample (bucket, id, v) VALUES (?, ?, ?)",
            [(bucket, gid, pack(total)) for gid, total in sums.items()],
        )
        writer.widen(conn, bucket, list(sums))


def _bucket_sums(conn, bucket: int, cluster_id: int, groups_of) -> dict[int, list]:
    """Every group's sums in one bucket from its node and pod rows, each pod's added to the
    groups `groups_of(namespace, deployment)` names, in the order of the pods' ids."""
    partials = _Partials()
    for (blob,) in conn.execute(_NODE_ROWS, (bucket,)):
        partials.add_node(cluster_id, unpack(blob, len(NODE_COLUMNS)))
    rows = conn.execute(
        "SELECT s.v, p.namespace, p.deployment FROM pod_sample s JOIN pod p ON p.id = s.id"
        " WHERE s.bucket = ? ORDER BY s.id",
        (bucket,),
    )
    for blob, namespace, deployment in rows:
        partials.add_pod(groups_of(namespace, deployment), unpack(blob, len(POD_COLUMNS)))
    return partials.sums()


class Unsummed:
    """The buckets whose groups' sums are not taken yet (or stale), and the sums one answer
    takes of them: of just the group asked for, or, for many groups, of all at once."""

    def __init__(self, conn, groups: int) -> None:
        row = conn.execute("SELECT done FROM rollup_state WHERE res = ?", (BUCKET,)).fetchone()
        query = "SELECT bucket FROM rollup_dirty WHERE res = ?"
        self.done = row[0] if row else 0
        self.stale = {bucket for (bucket,) in conn.execute(query, (BUCKET,))}
        self._all_at_once = groups > _FEW_GROUPS
        self._taken: dict[int, dict[int, list]] = {}

    def has(self, bucket: int) -> bool:
        """Whether a bucket's sums are to be taken here."""
        return bucket >= self.done or bucket in self.stale

    def buckets(self, conn, first: int, last: int) -> set[int]:
        """The buckets in [first, last] with samples but without their sums taken."""
        query = "SELECT DISTINCT bucket FROM node_sample WHERE bucket >= ? AND bucket <= ?"
        found = {bucket for (bucket,) in conn.execute(query, (max(first, self.done), last))}
        return found | {bucket for bucket in self.stale if first <= bucket <= last}

    def sums(self, conn, entity: Entity, bucket: int) -> list | None:
        """A group's sums in one bucket; None when it has nothing there."""
        if not self._all_at_once:
            return _group_sums(conn, entity, bucket)
        if bucket not in self._taken:
            self._taken[bucket] = self._every_group(conn, bucket)
        return self._taken[bucket].get(entity.id)

    @staticmethod
    def _every_group(conn, bucket: int) -> dict[int, list]:
        ids = {(kind, ns, name): gid for gid, kind, ns, name in conn.execute(_GROUPS)}

        def groups_of(ns, name):
            found = (ids.get((_NAMESPACE, ns, "")), ids.get((_DEPLOYMENT, ns, name)))
            return tuple(gid for gid in found if gid is not None)

        cluster_id = ids.get((GROUP_KIND[EntityKind.CLUSTER], "", ""), 0)
        return _bucket_sums(conn, bucket, cluster_id, groups_of)


def _group_sums(conn, entity: Entity, bucket: int) -> list | None:
    """A group's sums in one bucket from its pods' (the cluster's: its nodes') rows, in the
    order `_bucket_sums` adds them; None when it has none."""
    if entity.kind is EntityKind.CLUSTER:
        rows = conn.execute(_NODE_ROWS, (bucket,))
        vectors = [(*_NODE_SUMMED(unpack(blob, len(NODE_COLUMNS))), 1) for (blob,) in rows]
    else:
        sql = (
            "SELECT s.v FROM pod p JOIN pod_sample s ON s.bucket = ? AND s.id = p.id"
            " WHERE p.namespace = ?"
        )
        params = [bucket, entity.identity["namespace"]]
        if entity.kind is EntityKind.DEPLOYMENT:
            sql += " AND p.deployment = ?"
            params.append(entity.identity["name"])
        rows = conn.execute(sql + " ORDER BY s.id", params)
        vectors = [(*_POD_SUMMED(unpack(blob, len(POD_COLUMNS))), 1) for (blob,) in rows]
    if not vectors:
        return None
    return sum_columns(vectors)
