"""Where rows become answers: the entities of a kind, their latest values and their series.

`Reader.entities` lists nodes, pods, containers and groups from their tables, filtered and
ordered as `model.KINDS` says; `latest` reads each entity's newest row; `series` folds a
span's rows into steps as `base.fold` does, all the entities of a kind at once
(`summary.fold`), from the raw 10 s rows or, for long spans, the resolution (`resolution`)
whose rollup rows (`upkeep`) hold its periods' `STATS`. Rows are
unpacked by `codec`; a group's rows are its sums, kept by `writer` as its members' rows are
written (`sums`). Reads go through the thread's read-only connection
(`connections.Connections.reader`) and never wait for the writer.
"""

import operator
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from cloudmon.storage.base import (
    BUCKET,
    RESOLUTIONS,
    STATS,
    Entity,
    Span,
    as_latest,
    bucket_of,
    complete_bucket,
)
from cloudmon.storage.model import GROUP_SUM, IDENTITY, KINDS, EntityKind, columns
from cloudmon.storage.sqlite import sealed, summary
from cloudmon.storage.sqlite.codec import prefix, row_values, unpack_figures
from cloudmon.storage.sqlite.connections import StorePart
from cloudmon.storage.sqlite.schema import GROUP_KIND, ROLLUP_TABLE, SAMPLE_TABLE


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
        steps = span.steps()
        answers: list = [None] * len(entities)
        by_kind: dict[EntityKind, list[int]] = defaultdict(list)
        for at, entity in enumerate(entities):
            by_kind[entity.kind].append(at)
        for kind, positions in by_kind.items():
            ids = [entities[at].id for at in positions]
            table = SAMPLE_TABLE[kind]
            picked = [columns(kind).index(name) for name in names]
            parts = []
            if done is not None:
                # A rollup's figures fold as its raw values would: avg as the sum of sums over
                # the sum of counts; max of maxima, min of minima, last of lasts, sum of sums.
                end = min(last, done - res)
                # The bytes up to the last picked column.
                size = prefix(max(picked) + 1, len(STATS), len(columns(kind)))
                rolled = sealed.entities_rows(
                    conn, ROLLUP_TABLE[table], res, first // res * res, end, ids, size
                )
                parts.append(_rolled_up(rolled, kind, picked, span.agg))
            raw_from = first if done is None else max(first, done)
            size = None if kind in GROUP_SUM else prefix(max(picked) + 1, 1, len(columns(kind)))
            raw = sealed.entities_rows(conn, table, BUCKET, raw_from, last, ids, size)
            parts.append(_raw_values(raw, kind, picked))
            joined = (np.concatenate(part) for part in zip(*parts, strict=True))
            entity, buckets, values, counts = joined
            # A rollup period that starts before the span's first step (a step finer than
            # the period) counts in that step.
            places = entity * len(steps) + np.maximum(buckets - steps.start, 0) // span.step
            folded = summary.fold(places, values, counts, span.agg, len(ids) * len(steps))
            folded = folded.reshape(len(ids), len(steps), len(names)).transpose(0, 2, 1)
            timestamps = list(steps)
            for at, series in zip(positions, folded.tolist(), strict=True):
                answers[at] = {"timestamps": timestamps} | {
                    name: [None if value != value else value for value in values]
                    for name, values in zip(names, series, strict=True)
                }
        return answers


def _raw_values(rows: tuple, kind: EntityKind, picked: list[int]) -> tuple:
    """(entity, bucket, values, counts) of entities' 10 s rows (`sealed.entities_rows`): the
    picked columns' values, NaN where missing, and 1 where present."""
    entity, buckets, blobs = rows
    if kind in GROUP_SUM:
        values = summary.group_values(kind, blobs)[:, picked]
    else:
        values = summary.decode(blobs, len(columns(kind)), 1, picked)[..., 0]
    return entity, buckets, values, (~np.isnan(values)).astype(float)


def _rolled_up(rows: tuple, kind: EntityKind, picked: list[int], agg: str) -> tuple:
    """(entity, bucket, values, counts) of entities' rollup rows (`sealed.entities_rows`): the
    figure of the picked columns an aggregation folds (avg: the sum), and their counts."""
    entity, buckets, blobs = rows
    stats = summary.decode(blobs, len(columns(kind)), len(STATS), picked)
    figure = STATS.index("sum" if agg == "avg" else agg)
    return entity, buckets, stats[..., figure], stats[..., STATS.index("count")]


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
