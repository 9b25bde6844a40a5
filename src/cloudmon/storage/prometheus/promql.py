"""The PromQL the store asks the engine, as pure functions of a kind, label matchers, a reach
of buckets and an aggregation: selectors of the series `encoder` names, restrictions to some
entities' keys, and the expressions of entities' newest reports, of their samples in a bucket
and of their values over a reach of buckets; a group's values are its members' sums, which
the engine adds up (`bucket_expression`, after storage/model.py's definition). The labels of
each kind are derived here from `model.KINDS`; `reader` reads them too, decides what to ask
and when, and `client` asks it.
"""

import json
import re
from collections.abc import Callable, Iterable, Sequence

from cloudmon.storage.base import BUCKET
from cloudmon.storage.model import KINDS, LIMITS, EntityKind
from cloudmon.storage.prometheus.encoder import metric_name, seen_name

# Characters of an expression: VictoriaMetrics refuses more than 16 KiB (-search.maxQueryLen).
MAX_QUERY = 15_000
METRIC_LABEL = "cloudmon_metric"  # in a union's answers, the metric each series is of
MEAN = "mean"  # an agg of its own: avg over the samples of all an entity's series

# Per kind (from the model): the scope of its series, the labels keying one entity, the
# filters it takes as labels (a container's "key", its name or its ID, is handled by the
# reader), and which kinds are groups.
SCOPE = {kind: str(spec.member) for kind, spec in KINDS.items()}
KEY = {kind: tuple(spec.identity[f] for f in spec.key) for kind, spec in KINDS.items()}
FILTERS = {
    kind: {name: spec.identity[field] for name, field in spec.filters.items()}
    for kind, spec in KINDS.items()
}
GROUPS = tuple(kind for kind, spec in KINDS.items() if spec.group)
# The labels telling apart the entities of a kind that is not a group in its metric series:
# its key's, and a container's ID (one without a name is known by its ID).
_SERIES_KEY = {
    kind: (*KEY[kind], "container_id") if kind is EntityKind.CONTAINER else KEY[kind]
    for kind in KINDS
    if kind not in GROUPS
}
# The percentages computed from two sums (as `model.derive` does from a stored row).
PERCENTS = {
    "cpu_percent": ("cpu_cores", "cpu_capacity_cores"),
    "memory_percent": ("memory_used_bytes", "memory_total_bytes"),
}
_OVER_TIME = {agg: f"{agg}_over_time" for agg in ("avg", "max", "min", "last", "sum")}


def quote(value: str) -> str:
    """A PromQL string literal."""
    return json.dumps(value)


def duration(seconds: float) -> str:
    """A PromQL duration, in whole milliseconds."""
    return f"{int(seconds * 1000)}ms"


def selector(
    name: str | None,
    matchers: dict[str, str],
    regex: dict[str, Iterable[str]] | None = None,
    required: Iterable[str] = (),
) -> str:
    """A PromQL series selector: exact matchers, labels that must be present, and
    regular-expression matchers taking any of the values given."""
    parts = [f"{label}={quote(value)}" for label, value in matchers.items()]
    parts += [f'{label}!=""' for label in required if label not in matchers]
    parts += [
        f"{label}=~{quote('|'.join(re.escape(value) for value in sorted(set(values))))}"
        for label, values in (regex or {}).items()
    ]
    return f"{name or ''}{{{','.join(parts)}}}"


def kind_selector(name: str, kind: EntityKind, matchers: dict, regex=None) -> str:
    """A selector of the series of a kind's entities (a group's: of its members)."""
    # A namespace or deployment is made of the pods that carry its labels.
    required = KEY[kind] if kind in (EntityKind.NAMESPACE, EntityKind.DEPLOYMENT) else ()
    return selector(name, matchers, regex, required)


def filter_matchers(
    kind: EntityKind, base: dict[str, str], filters: dict[str, str]
) -> dict[str, str]:
    """The exact matchers of `base` (the cluster) and of a list's filters."""
    found = dict(base)
    for name, value in filters.items():
        label = FILTERS[kind].get(name)
        if label is None:
            raise ValueError(f"{kind} cannot be filtered by {name}")
        found[label] = value
    return found


def restriction(kind: EntityKind, keys: Iterable[tuple]) -> dict[str, list[str]]:
    """Regular-expression matchers narrowing a kind's series to those of the entities with
    these keys (containers, keyed by name or ID, to their pods')."""
    keys = list(keys)
    labels = KEY[kind][:1] if kind is EntityKind.CONTAINER else KEY[kind]
    return {label: [key[i] for key in keys] for i, label in enumerate(labels)}


def short(build: Callable[[dict], str], regex: dict) -> tuple[str, dict]:
    """`build(regex)` and `regex`, or where that is longer than MAX_QUERY, `build({})` and {}:
    every series of the kind, whose entities' answers the reader picks."""
    expression = build(regex)
    if len(expression) > MAX_QUERY:
        return build({}), {}
    return expression, regex


def seen(kind: EntityKind, matchers: dict, regex=None) -> str:
    """A selector of the reports of a kind's entities (a group's: of its members)."""
    return kind_selector(seen_name(SCOPE[kind]), kind, matchers, regex)


def newest_report(kind: EntityKind, matchers: dict, regex: dict, reach: float) -> str:
    """The newest bucket each entity (each of its `seen` series; a group's, of all its
    members') reported in over the `reach` seconds before the evaluation time."""
    expression = f"max_over_time({seen(kind, matchers, regex)}[{duration(reach)}])"
    if kind in GROUPS:
        return f"max by ({','.join(KEY[kind])}) ({expression})"
    return expression


def node_reports(base: dict, reach: float) -> str:
    """The reports of every node over the `reach` seconds before the evaluation time."""
    return f"{selector(seen_name('node'), base)}[{duration(reach)}]"


def first_report(base: dict, reach: float) -> str:
    """The first bucket any node reported in over the `reach` seconds before the evaluation
    time."""
    return f"min(min_over_time({node_reports(base, reach)}))"


def bucket_samples(names: Sequence[str], matchers: dict, regex: dict) -> str:
    """The samples of the series named in the bucket before the evaluation time."""
    chosen, _ = short(lambda r: selector(None, matchers, {**r, "__name__": names}), regex)
    return f"{chosen}[{duration(BUCKET)}]"


def expression(kind: EntityKind, name: str, base: dict, regex: dict, reach: int, agg: str) -> str:
    """The value of a metric over the `reach` seconds of buckets before the evaluation
    time, combined by agg; for groups, over the sums of each bucket."""
    scope = SCOPE[kind]
    if kind not in GROUPS:
        window = f"{selector(metric_name(scope, name), base, regex)}[{duration(reach)}]"
        # An entity whose labels changed (a pod's metadata known later) has several
        # series: combined here for max, min and sum; for last the reader picks one, and
        # for avg asks again for their mean (MEAN), which costs two scans.
        by = f"by ({','.join(_SERIES_KEY[kind])})"
        if reach == BUCKET or agg in ("last", "avg"):
            return f"{_OVER_TIME[agg if reach > BUCKET else 'last']}({window})"
        if agg == MEAN:
            return f"sum {by} (sum_over_time({window})) / sum {by} (count_over_time({window}))"
        return f"{agg} {by} ({_OVER_TIME[agg]}({window}))"
    inner = bucket_expression(kind, name, base, regex)
    if reach == BUCKET:
        return inner
    # The subquery's points are the bucket ends in (t - reach, t]: 1 ms short of reach,
    # so that the point at t - reach (the end of the bucket before) is out either way.
    return f"{_OVER_TIME[agg]}(({inner})[{duration(reach - 0.001)}:{BUCKET}s])"


def bucket_expression(kind: EntityKind, name: str, base: dict, regex: dict) -> str:
    """A group's value of a metric in the bucket ending at the evaluation time."""
    scope = SCOPE[kind]
    by = f"by ({','.join(KEY[kind])})"

    def last(series: str) -> str:
        chosen = kind_selector(series, kind, base, regex)
        return f"last_over_time({chosen}[{duration(BUCKET)}])"

    # A group's sum as storage/model.py defines it (GROUP_SUMS and CLUSTER_SUMS: which
    # columns; GroupSum: the sum), added up here by the engine in its floats: in each bucket,
    # over the members with a value (each member's newest sample in the bucket), none where
    # no member has one, and no limit where some member has none; pod_count (the cluster's
    # node_count) counts the members that reported, and the cluster's percentages are of its
    # sums, as model.derive computes them.
    members = f"count {by} ({last(seen_name(scope))})"
    if name == ("node_count" if kind is EntityKind.CLUSTER else "pod_count"):
        return members
    if name in LIMITS:
        limited = f"count {by} ({last(metric_name(scope, name))})"
        return f"sum {by} ({last(metric_name(scope, name))}) unless ({members} > {limited})"
    if name in PERCENTS:
        part, whole = PERCENTS[name]
        return (
            f"100 * sum({last(metric_name(scope, part))})"
            f" / (sum({last(metric_name(scope, whole))}) > 0)"
        )
    return f"sum {by} ({last(metric_name(scope, name))})"


def union(kind: EntityKind, names: Sequence[str], base: dict, regex: dict, reach: int, agg: str):
    """The expressions of several metrics as one, each series labelled with its metric under
    METRIC_LABEL."""
    return " or ".join(
        f"label_replace({expression(kind, name, base, regex, reach, agg)},"
        f' "{METRIC_LABEL}", "{name}", "{METRIC_LABEL}", ".*")'
        for name in names
    )
