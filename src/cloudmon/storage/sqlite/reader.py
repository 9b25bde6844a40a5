"""Where rows become answers: the entities of a kind, their latest values and their series.

`Reader.entities` lists nodes, pods, containers and groups from their tables, filtered and
ordered as `model.KINDS` says; `latest` reads each entity's newest row; `series` folds a
span's rows into steps (`base.fold`), from the raw 10 s rows or, for long spans, the
resolution (`resolution`) whose rollup rows (`upkeep`) hold its periods' `STATS`. Rows are
unpacked by `codec`; a group's rows are its sums, kept by `writer` as its members' rows are
written (`sums`). Reads go through the thread's read-only connection
(`connections.Connections.reader`) and never wait for the writer.
"""

import operator
from collections import defaultdict
from collections.abc import Sequence

from cloudmon.storage.base import (
    BUCKET,
    RESOLUTIONS,
    STATS,
    Entity,
    Span,
    as_latest,
    bucket_of,
    complete_bucket,
    fold,
)
from cloudmon.storage.model import IDENTITY, KINDS, EntityKind, columns
from cloudmon.storage.sqlite import sealed
from cloudmon.storage.sqlite.codec import row_values, unpack_figures
from cloudmon.storage.sqlite.connections import StorePart
from cloudmon.storage.sqlite.schema import GROUP_KIND, ROLLUP_TABLE, SAMPLE_TABLE

# The positions in STATS that an aggregation folds.
_FIGURES_OF = {
    "avg": (STATS.index("sum"), STATS.index("count")),
    "sum": (STATS.index("sum"),),
    "min": (STATS.index("min"),),
    "max": (STATS.index("max"),),
    "last": (STATS.index("last"),),
}


class Reader(StorePart):
    """Answers the store's queries from its file."""

    def entities(self, kind, filters=None, since=None, span=None):
        kind = EntityKind(kind)
        filters = dict(filters or {})
        where, params = [], []
        if kind is EntityKind.NODE:
            sql = (
                "SELECT first_bucket, id, last_bucket, name, cpu_count, memory_total_bytes,"
                " kernel, cgroup_version, boot_time FROM node"
            )
            make = _node_entity
        elif kind is EntityKind.POD:
            sql = (
                "SELECT first_bucket, id, last_bucket, namespace, name, uid, node, deployment,"
                " workload_kind, workload, qos FROM pod"
            )
            make = _pod_entity
        elif kind is EntityKind.CONTAINER:
            sql = (
                "SELECT * FROM (SELECT c.first_bucket, c.id, c.last_bucket, p.namespace,"
                " p.name AS pod, p.uid, p.node, c.name, c.container_id, c.key"
                " FROM ctr c JOIN pod p ON p.id = c.pod)"
            )
            make = _container_entity
        else:
            sql = "SELECT first_bucket, id, last_bucket, namespace, name FROM grp"
            where.append("kind = ?")
            params.append(GROUP_KIND[kind])
            make = _group_entity(kind)
        for name, value in filters.items():
            if name not in KINDS[kind].filters:
                raise ValueError(f"{kind} cannot be filtered by {name}")
            where.append(f"{name} = ?")
            params.append(value)
        if since is not None:
            where.append("last_bucket >= ?")
            params.append(since)
        if span is not None:
            where.append("last_bucket >= ? AND first_bucket <= ?")
            params += [span.first_bucket(), span.last_bucket()]
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY " + (", ".join(KINDS[kind].order) or "id")
        conn = self._db.reader()
        rows = conn.execute(sql, params).fetchall()
        found = [make(row[1:]) for row in rows]
        if span is None:
            return found
        # Those whose first and last buckets lie around the span may have none inside it.
        first, last = span.first_bucket(), span.last_bucket()
        around = [
            e.id
            for (f, *_), e in zip(rows, found, strict=True)
            if f < first <= last < e.last_bucket
        ]
        if not around:
            return found
        absent = set(around) - self._present(conn, SAMPLE_TABLE[kind], around, first, last)
        return [entity for entity in found if entity.id not in absent]

    def _present(self, conn, table: str, ids: list[int], first: int, last: int) -> set[int]:
        """Those of `ids` with a sample in [first, last]: in the raw samples, and where these
        are gone, in the rollups (to the period: a period starting before `first` counts)."""
        found: set[int] = set()
        remaining = set(ids)
        end = last
        for res in RESOLUTIONS:
            source = table if res == BUCKET else ROLLUP_TABLE[table]
            oldest, _ = sealed.held(conn, source, res)
            hits = sealed.present(conn, source, res, first // res * res, end, remaining)
            found.update(hits)
            remaining.difference_update(hits)
            if not remaining or (oldest is not None and oldest <= first):
                break
            if oldest is not None:  # coarser: only where this resolution holds nothing
                end = min(end, oldest - 1)
        return found

    def latest(self, entities, names):
        conn = self._db.reader()
        now = bucket_of(self._clock())
        buckets = [self._latest_bucket(conn, entity, now) for entity in entities]
        wanted: dict[tuple[str, int], list[int]] = defaultdict(list)
        for entity, bucket in zip(entities, buckets, strict=True):
            if bucket is not None:
                wanted[SAMPLE_TABLE[entity.kind], bucket].append(entity.id)
        blobs = {}
        for (table, bucket), ids in wanted.items():
            rows = sealed.lookup(conn, table, BUCKET, bucket, ids)
            blobs.update(((table, eid), blob) for eid, blob, _ in rows)
        found: list = [
            row_values(entity.kind, blobs[key])
            if (key := (SAMPLE_TABLE[entity.kind], entity.id)) in blobs
            else None
            for entity in entities
        ]
        expired = [i for i, bucket in enumerate(buckets) if bucket is not None and found[i] is None]
        if expired:
            rolled = self._latest_rolled_up(conn, [(entities[i], buckets[i]) for i in expired])
            for i, values in zip(expired, rolled, strict=True):
                found[i] = values
        pickers = {kind: _picker(kind, names) for kind in {entity.kind for entity in entities}}
        nothing = as_latest(names, [None] * len(names))
        answers = []
        for entity, bucket, values in zip(entities, buckets, found, strict=True):
            if values is None:
                answers.append({"timestamp": None, "metrics": dict(nothing)})
                continue
            values = pickers[entity.kind](values)
            answers.append({"timestamp": bucket, "metrics": as_latest(names, values)})
        return answers

    def _latest_bucket(self, conn, entity: Entity, now: int) -> int | None:
        """The bucket an entity's latest values come from: its newest up to the bucket of
        `now` (a node whose clock runs ahead writes later ones), but for the cluster its
        newest complete one (`complete_bucket`)."""
        last = entity.last_bucket
        if last is not None and last > now:
            last = self._newest_until(conn, entity, now)
        if entity.kind is not EntityKind.CLUSTER or last is None:
            return last
        rows = conn.execute(
            "SELECT bucket, id FROM node_sample WHERE bucket >= ? AND bucket <= ?",
            (last - 60, last),
        ).fetchall()
        reports = sealed.sealed_rows(conn, "node_sample", BUCKET, last - 60, last)
        rows += [(bucket, eid) for eid, bucket in reports]
        return complete_bucket(last, rows)

    @staticmethod
    def _newest_until(conn, entity: Entity, last: int) -> int | None:
        """An entity's newest bucket up to `last`; None when it has none."""
        return sealed.newest_until(conn, SAMPLE_TABLE[entity.kind], BUCKET, entity.id, last)

    def _latest_rolled_up(self, conn, expired: list[tuple[Entity, int]]) -> list:
        """The last values of entities whose newest bucket's raw samples have expired, from
        the finest rollup that still holds its period; None where none does."""
        found: dict[tuple[str, int], list] = {}
        last = (STATS.index("last"),)
        for res in RESOLUTIONS[1:]:
            wanted: dict[tuple[str, int], dict[int, EntityKind]] = defaultdict(dict)
            for entity, bucket in expired:
                table = ROLLUP_TABLE[SAMPLE_TABLE[entity.kind]]
                if (table, entity.id) not in found:
                    wanted[table, bucket // res * res][entity.id] = entity.kind
            for (table, period), kinds in wanted.items():
                for eid, blob, _ in sealed.lookup(conn, table, res, period, list(kinds)):
                    values = unpack_figures(blob, len(columns(kinds[eid])), last)[0]
                    found[table, eid] = values
        return [
            found.get((ROLLUP_TABLE[SAMPLE_TABLE[entity.kind]], entity.id)) for entity, _ in expired
        ]

    def resolution(self, span: Span) -> int:
        """The resolution a span is answered from (raw samples or a rollup)."""
        # The coarsest resolution that still covers the span and divides its step, else the
        # finest that covers it: rollups answer long spans, raw samples short ones.
        first = span.first_bucket()
        now = self._clock()
        covering = [r for r in RESOLUTIONS if first >= now - self._retention[r]]
        covering = covering or [RESOLUTIONS[-1]]
        fitting = [r for r in covering if span.step % r == 0]
        return max(fitting) if fitting else min(covering)

    def series(self, entities, names, span):
        conn = self._db.reader()
        first, last = span.first_bucket(), span.last_bucket()
        res = self.resolution(span)
        done = None
        if res != BUCKET:
            query = "SELECT done FROM rollup_state WHERE res = ?"
            done = (conn.execute(query, (res,)).fetchone() or (first // res * res,))[0]
        answers = []
        for entity in entities:
            pick = _picker(entity.kind, names)
            table = SAMPLE_TABLE[entity.kind]
            if done is None:
                rows = self._raw(conn, entity, first, last)
                answers.append(fold(((b, pick(values)) for b, values in rows), names, span))
                continue
            width = len(columns(entity.kind))
            rollups = list(
                sealed.entity_rows(
                    conn,
                    ROLLUP_TABLE[table],
                    res,
                    first // res * res,
                    min(last, done - res),
                    entity.id,
                )
            )
            raw = [
                (bucket, pick(values))
                for bucket, values in self._raw(conn, entity, max(first, done), last)
            ]
            # Each figure folds as the raw values would: avg as the sum of sums over the sum
            # of counts; max of maxima, min of minima, last of lasts, sum of sums.
            figures = _FIGURES_OF[span.agg]
            decoded = [(b, unpack_figures(blob, width, figures)) for b, blob in rollups]
            rows = [(b, pick(found[0])) for b, found in decoded]
            if span.agg != "avg":
                answers.append(fold(rows + raw, names, span))
                continue
            sums = fold(rows + raw, names, span, "sum")
            counts = [(b, pick(found[1])) for b, found in decoded]
            counts += [(b, [None if v is None else 1 for v in values]) for b, values in raw]
            counted = fold(counts, names, span, "sum")
            for name in names:
                sums[name] = [
                    None if total is None else total / count
                    for total, count in zip(sums[name], counted[name], strict=True)
                ]
            answers.append(sums)
        return answers

    @staticmethod
    def _raw(conn, entity: Entity, first: int, last: int) -> list[tuple]:
        """(bucket, values) of an entity's buckets in [first, last]."""
        rows = sealed.entity_rows(conn, SAMPLE_TABLE[entity.kind], BUCKET, first, last, entity.id)
        return [(bucket, row_values(entity.kind, blob)) for bucket, blob in rows]


def _picker(kind: EntityKind, names: Sequence[str]):
    known = columns(kind)
    if tuple(names) == known:
        return lambda values: values
    getter = operator.itemgetter(*(known.index(name) for name in names))
    if len(names) == 1:
        return lambda values: (getter(values),)
    return getter


def _node_entity(row) -> Entity:
    eid, last, name, cpu_count, memory, kernel, cgroup, boot = row
    info = {
        "cpu_count": cpu_count,
        "memory_total_bytes": memory,
        "kernel": kernel,
        "cgroup_version": cgroup,
        "boot_time": boot,
    }
    return Entity(EntityKind.NODE, eid, {"node": name}, last, info)


def _pod_entity(row) -> Entity:
    eid, last, namespace, name, uid, node, deployment, workload_kind, workload, qos = row
    identity = {
        "namespace": namespace,
        "name": name,
        "uid": uid,
        "node": node,
        "deployment": deployment,
        "workload_kind": workload_kind,
        "workload": workload,
    }
    return Entity(EntityKind.POD, eid, identity, last, {"qos": qos})


def _container_entity(row) -> Entity:
    eid, last, *identity, _ = row
    fields = IDENTITY[EntityKind.CONTAINER]
    return Entity(EntityKind.CONTAINER, eid, dict(zip(fields, identity, strict=True)), last)


def _group_entity(kind: EntityKind):
    def make(row) -> Entity:
        eid, last, namespace, name = row
        if kind is EntityKind.NAMESPACE:
            identity = {"namespace": namespace}
        elif kind is EntityKind.DEPLOYMENT:
            identity = {"namespace": namespace, "name": name}
        else:
            identity = {}
        return Entity(kind, eid, identity, last)

    return make
