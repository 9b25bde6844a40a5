"""The storage interface the server's endpoints use, the columns each kind of entity keeps,
and the registry of backends by URL scheme."""

import operator
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cloudmon.metrics import CATALOGUE, Kind, Scope, metrics_for, rates_for

BUCKET = 10  # seconds: contract section 4, bucket = floor(timestamp / 10) * 10


class EntityKind(StrEnum):
    NODE = "node"
    POD = "pod"
    NAMESPACE = "namespace"
    DEPLOYMENT = "deployment"
    CLUSTER = "cluster"
    CONTAINER = "container"


# The identity fields of each kind of entity in the API (contract section 4).
IDENTITY = {
    EntityKind.NODE: ("node",),
    EntityKind.POD: ("namespace", "name", "uid", "node", "deployment", "workload_kind", "workload"),
    EntityKind.NAMESPACE: ("namespace",),
    EntityKind.DEPLOYMENT: ("namespace", "name"),
    EntityKind.CLUSTER: (),
    EntityKind.CONTAINER: ("namespace", "pod", "uid", "node", "name", "container_id"),
}

# A kind's stored columns are its rows' layout on disk: a new column goes last.
_NODE_MEASURED = tuple(m.name for m in metrics_for(Scope.NODE) if m.by_server)
_NODE_SENT = tuple(m.name for m in metrics_for(Scope.NODE) if not m.by_server)
NODE_COLUMNS = (*_NODE_SENT, "cpu_capacity_cores", *_NODE_MEASURED)
POD_COLUMNS = tuple(m.name for m in metrics_for(Scope.POD))
CONTAINER_COLUMNS = tuple(m.name for m in metrics_for(Scope.CONTAINER))
# Namespaces and deployments sum their pods' rates and gauges, never cumulative counters.
GROUP_COLUMNS = (
    *(m.name for m in metrics_for(Scope.POD) if m.kind is not Kind.COUNTER),
    "pod_count",
)
# The cluster's sums over nodes, as contract section 4 lists them.
CLUSTER_SUMS = (
    *(m.name for m in rates_for(Scope.NODE)),
    "memory_used_bytes",
    "memory_total_bytes",
    "pod_count",
    "cpu_capacity_cores",
)
CLUSTER_COLUMNS = (*CLUSTER_SUMS, "node_count")
CLUSTER_DERIVED = ("cpu_percent", "memory_percent")

# What the columns outside the catalogue hold.
EXTRA_HELP = {
    "cpu_capacity_cores": "CPU capacity (node_info.cpu_count); for the cluster, of all nodes",
    "pod_count": "pods reporting in the bucket",
    "node_count": "nodes reporting in the bucket",
    "cpu_percent": "100 x cpu_cores / cpu_capacity_cores",
    "memory_percent": "100 x memory_used_bytes / memory_total_bytes",
}
COUNTS = frozenset({"pod_count", "node_count"})
INTEGER_COLUMNS = frozenset(m.name for m in CATALOGUE if m.integer) | COUNTS

STORED_COLUMNS = {
    EntityKind.NODE: NODE_COLUMNS,
    EntityKind.POD: POD_COLUMNS,
    EntityKind.NAMESPACE: GROUP_COLUMNS,
    EntityKind.DEPLOYMENT: GROUP_COLUMNS,
    EntityKind.CLUSTER: CLUSTER_COLUMNS,
    EntityKind.CONTAINER: CONTAINER_COLUMNS,
}


def columns(kind: EntityKind) -> tuple[str, ...]:
    """The metric names an entity of this kind answers with, stored then derived."""
    return STORED_COLUMNS[kind] + (CLUSTER_DERIVED if kind is EntityKind.CLUSTER else ())


def derive(kind: EntityKind, values: list) -> list:
    """A stored row extended with the metrics computed from it (the cluster's percentages)."""
    if kind is not EntityKind.CLUSTER:
        return values
    row = dict(zip(CLUSTER_COLUMNS, values, strict=True))
    return [
        *values,
        _percent(row["cpu_cores"], row["cpu_capacity_cores"]),
        _percent(row["memory_used_bytes"], row["memory_total_bytes"]),
    ]


def _percent(part, whole):
    return None if part is None or not whole else 100.0 * part / whole


def as_latest(names: Sequence[str], values: Sequence) -> dict:
    """A latest row as {name: value}, integer metrics as JSON integers."""
    return {
        name: int(value) if name in INTEGER_COLUMNS and value is not None else value
        for name, value in zip(names, values, strict=True)
    }


_node_sent = operator.attrgetter(*_NODE_SENT)


def node_row(payload) -> list:
    """A payload's node figures in NODE_COLUMNS order."""
    metrics = payload.node_metrics
    measured = (getattr(metrics, name) for name in _NODE_MEASURED)
    return [*_node_sent(metrics), payload.node_info.cpu_count, *measured]


def bucket_of(timestamp: float) -> int:
    """The start of the 10 s bucket holding a timestamp."""
    return int(timestamp // BUCKET) * BUCKET


def complete_bucket(last: int, reports: Iterable[tuple[int, Any]]) -> int:
    """The bucket the cluster's latest values come from, given its newest and the (bucket,
    node) reports of the minute up to it: the newest, unless a node that reported in the
    minute before has not reported into it yet (it holds only the nodes reported so far);
    then the one before."""
    earlier: dict[int, set] = defaultdict(set)
    newest: set = set()
    for bucket, node in reports:
        (newest if bucket == last else earlier[bucket]).add(node)
    if not earlier or set().union(*earlier.values()) <= newest:
        return last
    return max(earlier)


AGGREGATIONS = ("avg", "max", "min", "last", "sum")
RESOLUTIONS = (BUCKET, 60, 3600)  # seconds: raw samples, then 1 min and 1 h rollups
# How long each resolution is kept (issue 3's defaults).
RETENTION = {BUCKET: 86400, 60: 7 * 86400, 3600: 90 * 86400}


@dataclass(frozen=True)
class Span:
    """Buckets whose start lies in [start, end], combined into steps of `step` seconds."""

    start: int
    end: int
    step: int
    agg: str = "avg"

    def first_bucket(self) -> int:
        """The first bucket start inside the span."""
        return -(-self.start // BUCKET) * BUCKET

    def last_bucket(self) -> int:
        """The last bucket start inside the span."""
        return bucket_of(self.end)

    def steps(self) -> range:
        """The step labels (starts, aligned to multiples of step since the epoch)."""
        first = self.first_bucket() // self.step * self.step
        return range(first, self.last_bucket() // self.step * self.step + 1, self.step)


@dataclass
class Entity:
    """One node, pod, namespace, deployment or the cluster, as the store knows it."""

    kind: EntityKind
    id: int
    identity: dict[str, Any]
    last_bucket: int | None
    info: dict[str, Any] = field(default_factory=dict)


def fold(
    rows: Iterable[tuple[int, Sequence]], names: Sequence[str], span: Span, agg: str | None = None
) -> dict:
    """Columnar series of `names` from (bucket, values) rows, combined per step by agg."""
    steps = span.steps()
    first, step = steps.start, span.step
    groups: list[list] = [[] for _ in steps]
    for bucket, values in sorted(rows, key=lambda row: row[0]):
        groups[(bucket - first) // step].append(values)
    combine = _COMBINE[agg or span.agg]
    series: dict[str, list] = {"timestamps": list(steps)}
    columns_out = [[None] * len(steps) for _ in names]
    for k, group in enumerate(groups):
        if not group:
            continue
        for i, column in enumerate(zip(*group, strict=True)):
            try:
                columns_out[i][k] = combine(column)
            except TypeError:  # some are None: combine the others
                present = [value for value in column if value is not None]
                columns_out[i][k] = combine(present) if present else None
    series.update(zip(names, columns_out, strict=True))
    return series


# A rollup keeps, per column, these figures of the 10 s values in its period.
STATS = ("sum", "count", "min", "max", "last")


def merge_stats(earlier: tuple | None, later: tuple) -> tuple:
    """The STATS of two consecutive periods together."""
    if earlier is None:
        return later
    return (
        earlier[0] + later[0],
        earlier[1] + later[1],
        min(earlier[2], later[2]),
        max(earlier[3], later[3]),
        later[4],
    )


def _last(values: Sequence):
    if values[-1] is None:
        raise TypeError("the last value is missing")
    return values[-1]


_COMBINE: dict[str, Callable[[Sequence], float]] = {
    "avg": lambda values: sum(values) / len(values),
    "max": max,
    "min": min,
    "last": _last,
    "sum": sum,
}


class EngineError(RuntimeError):
    """The engine behind a store answered with an error of its own (the server answers 502)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Storage(ABC):
    """A time-series store of payloads, one value per entity, metric and 10 s bucket."""

    @abstractmethod
    def write(self, payloads: Sequence) -> int:
        """Store payloads atomically (all or none); returns the number of samples stored."""

    @abstractmethod
    def entities(
        self,
        kind: EntityKind,
        filters: dict[str, str] | None = None,
        since: int | None = None,
        span: Span | None = None,
    ) -> list[Entity]:
        """Entities matching identity filters, with data since a bucket or inside a span."""

    @abstractmethod
    def latest(self, entities: Sequence[Entity], names: Sequence[str]) -> list[dict]:
        """For each entity its newest bucket's values of `names`, as {"timestamp", "metrics"}."""

    @abstractmethod
    def series(self, entities: Sequence[Entity], names: Sequence[str], span: Span) -> list[dict]:
        """For each entity a columnar series of `names` over span (see `fold`)."""

    @abstractmethod
    def roll_up(self) -> int:
        """Summarise finished periods into the coarser resolutions; returns periods done."""

    @abstractmethod
    def expire(self) -> int:
        """Delete what each resolution's retention no longer covers; returns rows deleted."""

    @abstractmethod
    def checkpoint(self) -> None:
        """Move recent writes to their final place off the writers' path (SQLite: the sums
        of closed buckets into their rows, the WAL into the database file)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise unless the store can answer queries."""

    @abstractmethod
    def stats(self) -> dict[str, float]:
        """The store's own figures (size on disk, rows)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""


_BACKENDS: dict[str, Callable[..., Storage]] = {}


def register(scheme: str):
    """Register a backend class under a URL scheme (`sqlite` for sqlite:///PATH)."""

    def decorate(cls):
        _BACKENDS[scheme] = cls.from_url
        return cls

    return decorate


def open_storage(url: str, **options) -> Storage:
    """Open the backend named by the URL's scheme."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in _BACKENDS:
        known = ", ".join(f"{name}://" for name in sorted(_BACKENDS))
        raise ValueError(f"storage URL {url!r}: unknown scheme (known: {known})")
    return _BACKENDS[scheme](url, **options)
