"""Where the engine's answers become the store's: entities from the labels of their `seen`
series, latest values from an entity's raw samples in its newest bucket (a group's from its
sums there), and series folded by the engine (`<agg>_over_time` over each step; for
namespaces, deployments and the cluster, over the per-bucket sums, a subquery at 10 s). The
reader decides what to ask for and when (which buckets are held, which steps go by range
query and which one by one near the engine's clock, how many steps a query takes), builds it
with `promql`, asks it through `client`, and keys the answers back to entities.
"""

import math
import operator
from collections import defaultdict
from collections.abc import Sequence

from cloudmon.storage.base import (
    BUCKET,
    EngineError,
    Entity,
    as_latest,
    bucket_of,
    complete_bucket,
    fold,
)
from cloudmon.storage.model import KINDS, STORED_COLUMNS, EntityKind, columns, derive
from cloudmon.storage.prometheus import promql
from cloudmon.storage.prometheus.client import MAX_STEPS, EngineClient
from cloudmon.storage.prometheus.encoder import NODE_INFO, metric_name
from cloudmon.storage.prometheus.promql import GROUPS, KEY, METRIC_LABEL, SCOPE, short

AHEAD = 3600 + BUCKET  # seconds past the clock a sample may lie: ingest refuses later ones
# Per series, the points one query's 10 s subquery may compute, counted by VictoriaMetrics
# from 5 minutes before the range's window to a bucket past its end: 1.79 refuses more than
# 30,000 (-search.maxPointsPerTimeseries), 1.8x and later 100,000 (a flag of its own).
SUBQUERY_POINTS = 25_000
SUBQUERY_MARGIN = 300 + 2 * BUCKET
# For steps under a minute, VictoriaMetrics gives a range query's points from its
# -search.latencyOffset (at least 1 s in 1.79) before its clock to a step after it the value
# of the point before: the steps ending in that time, give or take RECENT seconds (the
# offset the overlay sets is 0 s, the clocks may differ), are asked for one by one.
RECENT = 5
# Seconds: a group's series over a longer span is asked for from the first bucket held.
LONG_SPAN = 31 * 86400
SCAN_SPAN = 3600  # seconds of reports a list reads whole (see `_last_seen`)

_INFO_TYPES = {"cpu_count": int, "memory_total_bytes": int, "cgroup_version": int}
_INFO_TYPES["boot_time"] = float
_FIELDS = {kind: spec.identity for kind, spec in KINDS.items()}


class EngineReader:
    """The entities, latest values and series of one cluster's series in the engine."""

    def __init__(self, client: EngineClient, cluster: str | None, history: float, clock) -> None:
        """`history`: the seconds looked back for entities without a time bound."""
        self.client = client
        self.history = history
        self._base = {"cluster": cluster} if cluster else {}
        self._clock = clock

    def _horizon(self) -> int:
        return bucket_of(self._clock() + AHEAD)

    def _last_seen(self, kind: EntityKind, matchers: dict, first: int, last: int) -> dict:
        """Per entity key, (labels, newest bucket) of each of its `seen` series with a sample
        in buckets [first, last]. Only the last SCAN_SPAN seconds of reports are read whole
        (reading a week's costs about a second per 250 pods): the entities that reported
        only before are found in the engine's index, and their reports alone are read."""
        recent = max(first, min(last, bucket_of(self._clock())) - SCAN_SPAN)
        found = self._newest(kind, matchers, {}, recent, last)
        if recent == first:
            return found
        try:
            indexed = self.client.find_series(promql.seen(kind, matchers), first, recent)
        except EngineError:  # more series than it names at once (VictoriaMetrics: 30,000)
            return self._newest(kind, matchers, {}, first, last)
        # The index may name series whose samples lie just outside: reading them tells.
        older = {_key(kind, labels) for labels in indexed}
        older -= found.keys()
        if older:
            regex = promql.restriction(kind, older)
            for key, series in self._newest(kind, matchers, regex, first, recent - BUCKET).items():
                if key in older:
                    found[key] = series
        return found

    def _newest(self, kind: EntityKind, matchers: dict, regex: dict, first: int, last: int):
        reach = last + BUCKET - first
        expression, _ = short(lambda r: promql.newest_report(kind, matchers, r, reach), regex)
        found = defaultdict(list)
        for item in self.client.instant(expression, last + BUCKET):
            bucket = int(float(item["value"][1]))
            found[_key(kind, item["metric"])].append((item["metric"], bucket))
        return found

    def entities(self, kind, filters=None, since=None, span=None):
        kind = EntityKind(kind)
        filters = dict(filters or {})
        key = filters.pop("key") if kind is EntityKind.CONTAINER and "key" in filters else None
        matchers = promql.filter_matchers(kind, self._base, filters)
        horizon = self._horizon()
        if span is None:
            first = bucket_of(self._clock() - self.history) if since is None else since
            found = self._last_seen(kind, matchers, first, horizon) if first <= horizon else {}
        else:
            first, last = span.first_bucket(), span.last_bucket()
            found = {}
            if first <= last:
                # Their reports from the span's start on: those whose newest lies in the span
                # reported in it; the others (a span ending before now) are asked again.
                found = self._last_seen(kind, matchers, first, max(horizon, last))
                later = {key for key, series in found.items() if _newest(series) > last}
                if later:
                    inside = self._last_seen(kind, matchers, first, last)
                    found = {key: series for key, series in found.items() if key in inside}
        if key is not None:
            found = {k: series for k, series in found.items() if k[1] == key}
        return _make_entities(kind, found)

    def latest(self, entities, names):
        names = tuple(names)
        answers: list = [None] * len(entities)
        wanted: dict[tuple[EntityKind, int], list[int]] = defaultdict(list)
        until = self._newest_until(entities, bucket_of(self._clock()))
        for i, entity in enumerate(entities):
            bucket = until.get(i, entity.last_bucket)
            if entity.kind is EntityKind.CLUSTER and bucket is not None:
                bucket = self._complete_bucket(bucket)
            if bucket is None:
                answers[i] = {"timestamp": None, "metrics": as_latest(names, [None] * len(names))}
            else:
                wanted[entity.kind, bucket].append(i)
        for (kind, bucket), indexes in wanted.items():
            rows = self._bucket_rows(kind, bucket, [entities[i] for i in indexes], names)
            known = columns(kind)
            nothing = [None] * len(known)
            for i in indexes:
                values = rows.get(_entity_key(entities[i]), nothing)
                picked = [values[known.index(name)] for name in names]
                answers[i] = {"timestamp": bucket, "metrics": as_latest(names, picked)}
        return answers

    def _newest_until(self, entities: Sequence[Entity], last: int) -> dict[int, int | None]:
        """By position, the newest bucket up to `last` of the entities with later ones (a
        node whose clock runs ahead writes them); None for those with none."""
        ahead: dict[EntityKind, list[int]] = defaultdict(list)
        for i, entity in enumerate(entities):
            if entity.last_bucket is not None and entity.last_bucket > last:
                ahead[entity.kind].append(i)
        until: dict[int, int | None] = {}
        for kind, indexes in ahead.items():
            keys = [_entity_key(entities[i]) for i in indexes]
            matchers = promql.filter_matchers(kind, self._base, {})
            regex = promql.restriction(kind, keys)
            found = self._newest(kind, matchers, regex, last - SCAN_SPAN, last)
            for i, key in zip(indexes, keys, strict=True):
                until[i] = _newest(found[key]) if key in found else None
        return until

    def _raw_samples(self, names: Sequence[str], matchers: dict, regex: dict, bucket: int):
        """(time, name, labels, value) of the newest sample in a bucket of each series named,
        oldest first."""
        samples = []
        expression = promql.bucket_samples(names, matchers, regex)
        for item in self.client.instant(expression, bucket + BUCKET):
            labels = item["metric"]
            at, value = item["values"][-1]  # the engine gives a series' samples oldest first
            samples.append((at, labels.pop("__name__"), labels, _number(value)))
        samples.sort(key=operator.itemgetter(0))
        return samples

    def _bucket_rows(
        self, kind: EntityKind, bucket: int, entities: Sequence[Entity], names: Sequence[str]
    ) -> dict:
        """Per entity key, its values of columns(kind) in one bucket: those that `names`
        need, the others None."""
        stored = STORED_COLUMNS[kind]
        percents = promql.PERCENTS
        needed = set(names).union(*(percents[name] for name in names if name in percents))
        chosen = [name for name in stored if name in needed]
        regex = promql.restriction(kind, map(_entity_key, entities))
        rows: dict[tuple, list] = {}
        if kind in GROUPS:  # summed by the engine, as a series' steps are
            expression, _ = short(
                lambda r: promql.union(kind, chosen, self._base, r, BUCKET, "last"), regex
            )
            for item in self.client.instant(expression, bucket + BUCKET) if chosen else ():
                labels = item["metric"]
                row = rows.setdefault(_key(kind, labels), [None] * len(stored))
                row[stored.index(labels[METRIC_LABEL])] = _number(item["value"][1])
            return {key: derive(kind, row) for key, row in rows.items()}
        series = {metric_name(SCOPE[kind], name): stored.index(name) for name in chosen}
        # An entity whose labels changed within the bucket has several series: the newest
        # sample goes last.
        for _, name, labels, value in self._raw_samples(list(series), self._base, regex, bucket):
            row = rows.setdefault(_key(kind, labels), [None] * len(stored))
            if value is not None:
                row[series[name]] = value
        return rows

    def _complete_bucket(self, last: int) -> int:
        """The bucket the cluster's latest values come from (`complete_bucket`)."""
        items = self.client.instant(promql.node_reports(self._base, 60 + BUCKET), last + BUCKET)
        return complete_bucket(
            last,
            (
                (bucket_of(float(timestamp)), item["metric"].get("node", ""))
                for item in items
                for timestamp, _ in item["values"]
            ),
        )

    def series(self, entities, names, span):
        names = tuple(names)
        answers = [fold([], names, span) for _ in entities]
        if not entities or not len(span.steps()):
            return answers
        for kind in dict.fromkeys(entity.kind for entity in entities):
            of_kind = [(i, e) for i, e in enumerate(entities) if e.kind is kind]
            several = self._fold(kind, of_kind, names, span, span.agg, answers)
            if several and span.agg == "avg" and kind not in GROUPS:
                # Their series' means, each of its own samples, are asked again as one mean.
                again = [(i, e) for i, e in of_kind if i in several]
                self._fold(kind, again, names, span, promql.MEAN, answers)
        return answers

    def _fold(self, kind: EntityKind, entities: list, names: tuple, span, agg: str, answers):
        """Fill in the `answers` of (index, entity) pairs of one kind over the span; returns
        the indexes of the entities that had several series (their labels changed)."""
        steps = span.steps()
        first, last, step = span.first_bucket(), span.last_bucket(), span.step
        where = {_entity_key(e): i for i, e in entities}
        position = {label: k for k, label in enumerate(steps)}
        filled: set[tuple[int, str, int]] = set()
        several: set[int] = set()

        def fill(items: list[dict], label_of) -> None:
            found = []
            for item in items:
                i = where.get(_key(kind, item["metric"]))
                if i is not None:
                    found.append((i, item))
            if len({(i, item["metric"][METRIC_LABEL]) for i, item in found}) < len(found):
                # Of an entity's several series, the one labelled as it is now is the newest:
                # its values go last.
                found.sort(key=lambda pair: _agreement(entity_at[pair[0]], pair[1]["metric"]))
            for i, item in found:
                name = item["metric"][METRIC_LABEL]
                column = answers[i][name]
                for timestamp, value in item.get("values") or [item["value"]]:
                    label = label_of(float(timestamp))
                    if (i, name, label) in filled:
                        several.add(i)
                    filled.add((i, name, label))
                    column[position[label]] = _number(value)

        entity_at = dict(entities)
        regex = promql.restriction(kind, where)
        held = self._held(kind, [e for _, e in entities], first, last)
        if held is None:
            return several
        whole = [s for s in steps if s >= first and s + step - BUCKET <= last]
        # Whole steps come from range queries, but those ending near the clock (see RECENT)
        # and the partial steps at either end from an instant query each; only the steps
        # with buckets held.
        now = self._clock()
        near = [s for s in whole if now - RECENT < s + step <= now + step + RECENT]
        runs = [
            [s for s in whole if s + step <= now - RECENT],
            [s for s in whole if s + step > now + step + RECENT],
        ]
        edges = [s for s in dict.fromkeys((steps[0], steps[-1])) if s not in whole]
        singles = dict.fromkeys((*edges, *near))

        def inside(label: int) -> bool:
            return label <= held[1] and label + step - BUCKET >= held[0]

        expression, regex = short(
            lambda r: promql.union(kind, names, self._base, r, step, agg), regex
        )
        steps_per_query = MAX_STEPS
        if kind in GROUPS:  # a subquery over each chunk
            room = SUBQUERY_POINTS * BUCKET - step - SUBQUERY_MARGIN
            steps_per_query = max(1, min(MAX_STEPS, room // step + 1))
        for run in runs:
            run = [label for label in run if inside(label)]
            if run:
                items = self.client.range_query(
                    expression, run[0] + step, run[-1] + step, step, steps_per_query
                )
                fill(items, lambda t: int(t) - step)
        for label in filter(inside, singles):
            start, end = max(label, first), min(label + step - BUCKET, last)
            reach = end + BUCKET - start
            union = promql.union(kind, names, self._base, regex, reach, agg)
            fill(self.client.instant(union, end + BUCKET), lambda _, label=label: label)
        return several

    def _held(self, kind: EntityKind, entities: Sequence[Entity], first: int, last: int):
        """The buckets of [first, last] that may hold samples of these entities: up to their
        newest report, and for groups over a span longer than LONG_SPAN (their subqueries
        cost by the span, samples or none), from the first report of a node in it, which
        every pod's report comes with; None if there are none."""
        newest = [entity.last_bucket for entity in entities if entity.last_bucket is not None]
        last = min(last, max(newest, default=first - BUCKET))
        if kind in GROUPS and last - first > LONG_SPAN:
            expression = promql.first_report(self._base, last + BUCKET - first)
            items = self.client.instant(expression, last + BUCKET)
            first = max(first, int(float(items[0]["value"][1]))) if items else last + BUCKET
        return (first, last) if first <= last else None


def _number(text: str) -> float | None:
    value = float(text)
    return None if math.isnan(value) or math.isinf(value) else value


def _key(kind: EntityKind, labels: dict[str, str]) -> tuple:
    if kind is EntityKind.CONTAINER:  # one without a name is known by its ID
        return (labels.get("uid", ""), labels.get("container") or labels.get("container_id", ""))
    return tuple(labels.get(label, "") for label in KEY[kind])


def _entity_key(entity: Entity) -> tuple:
    if entity.kind is EntityKind.CONTAINER:
        identity = entity.identity
        return (identity["uid"] or "", identity["name"] or identity["container_id"] or "")
    return tuple(entity.identity[field] or "" for field in KINDS[entity.kind].key)


def _newest(series: list[tuple[dict, int]]) -> int:
    return max(bucket for _, bucket in series)


def _agreement(entity: Entity, labels: dict[str, str]) -> int:
    """How many of an entity's identity fields a series' labels give as they are now."""
    return sum(
        labels.get(label) == entity.identity[field] for field, label in _FIELDS[entity.kind].items()
    )


def _order(entity: Entity) -> list:
    """Entities in the embedded store's order: by identity, containers by their key."""
    values = entity.identity.values()
    if entity.kind is EntityKind.CONTAINER:
        values = (entity.identity["namespace"], entity.identity["pod"], *_entity_key(entity))
    return [(v is not None, v or "") for v in values]


def _make_entities(kind: EntityKind, found: dict) -> list[Entity]:
    entities = []
    for series in found.values():
        series.sort(key=lambda item: item[1], reverse=True)
        labels: dict[str, str] = {}
        for metric, _ in series:  # newest first: older series fill in what newer ones lack
            for label, value in metric.items():
                labels.setdefault(label, value)
        identity = {field: labels.get(label) for field, label in _FIELDS[kind].items()}
        info = {}
        if kind is EntityKind.NODE:
            info = {
                name: _INFO_TYPES.get(name, str)(labels[name]) if name in labels else None
                for name in NODE_INFO
            }
        elif kind is EntityKind.POD:
            info = {"qos": labels.get("qos")}
        entities.append(Entity(kind, 0, identity, series[0][1], info))
    entities.sort(key=_order)
    for number, entity in enumerate(entities):
        entity.id = number
    return entities
