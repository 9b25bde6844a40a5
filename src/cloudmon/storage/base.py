"""The storage interface the server's endpoints use, the time model (buckets, spans,
resolutions, aggregations), and the registry of backends by URL scheme."""

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloudmon.storage.model import INTEGER_COLUMNS, EntityKind

BUCKET = 10  # seconds: contract section 4, bucket = floor(timestamp / 10) * 10


def as_latest(names: Sequence[str], values: Sequence) -> dict:
    """A latest row as {name: value}, integer metrics as JSON integers."""
    return {
        name: int(value) if name in INTEGER_COLUMNS and value is not None else value
        for name, value in zip(names, values, strict=True)
    }


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


def stats_of(values: Sequence) -> tuple | None:
    """The STATS of consecutive values (None where missing); None when none is present."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    return (sum(present), float(len(present)), min(present), max(present), present[-1])


def merged_stats(periods: Sequence) -> tuple | None:
    """The STATS of consecutive periods together (None where one has none); None when none
    has any."""
    present = [stats for stats in periods if stats is not None]
    if not present:
        return None
    sums, counts, lows, highs, lasts = zip(*present, strict=True)
    return (sum(sums), sum(counts), min(lows), max(highs), lasts[-1])


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
    def ping(self) -> None:
        """Raise unless the store can answer queries."""

    @abstractmethod
    def stats(self) -> dict[str, float]:
        """The store's own figures (size on disk, rows)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""

    @classmethod
    def worker_options(cls, threads: int) -> dict:
        """Options for opening the store in each of the server's worker processes, which run
        `threads` threads each (none by default)."""
        return {}


class StoreUpkeep(ABC):
    """What a store that keeps its data itself does in the background (the server's master
    runs it): a store whose engine keeps its own, such as a Prometheus, has none."""

    @abstractmethod
    def roll_up(self) -> int:
        """Summarise finished periods into the coarser resolutions; returns periods done."""

    @abstractmethod
    def expire(self) -> int:
        """Delete what each resolution's retention no longer covers; returns rows deleted."""

    @abstractmethod
    def checkpoint(self) -> None:
        """Move recent writes to their final place off the writers' path (SQLite: the WAL
        into the database file)."""

    @abstractmethod
    def keep_size(self) -> int:
        """Delete the oldest data while the store is over its size (`--retention-size`),
        and measure what each resolution takes; returns rows deleted."""


class UsageHistory(ABC):
    """What right-sizing reads (`rightsizing`): a store that keeps each pod's and container's
    usage sketch of each day (`usage.Days`). A store whose engine does not (a Prometheus) has
    no right-sizing."""

    @abstractmethod
    def usage(self, kind: EntityKind, start: float, end: float, ids=None) -> tuple[list[int], Any]:
        """The ids of the pods or containers (all, or of these ids) with usage in the days from
        that of `start` to that of `end`, and their `usage.Days` summed over those days, a
        row for each id in the same order."""


_BACKENDS: dict[str, type[Storage]] = {}


def register(scheme: str):
    """Register a backend class under a URL scheme (`sqlite` for sqlite:///PATH); it opens
    a URL with its `from_url`."""

    def decorate(cls):
        _BACKENDS[scheme] = cls
        return cls

    return decorate


def backend(url: str) -> type[Storage]:
    """The backend class of a storage URL's scheme."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in _BACKENDS:
        known = ", ".join(f"{name}://" for name in sorted(_BACKENDS))
        raise ValueError(f"storage URL {url!r}: unknown scheme (known: {known})")
    return _BACKENDS[scheme]


def open_storage(url: str, **options) -> Storage:
    """Open the backend named by the URL's scheme."""
    return backend(url).from_url(url, **options)
