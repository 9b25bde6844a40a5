"""The one model of what cloudmon keeps: each kind of entity (its identity, filters, order,
labels and stored columns) and the one definition of a group's sum.

Both stores, the routes, `/metrics`, the OpenAPI description and the dashboard's catalogue
read the kinds from here; a store that adds up groups itself does it with `sum_columns`.
"""

import functools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cloudmon.metrics import BY_NAME, CATALOGUE, Scope


class EntityKind(StrEnum):
    NODE = "node"
    POD = "pod"
    NAMESPACE = "namespace"
    DEPLOYMENT = "deployment"
    CLUSTER = "cluster"
    CONTAINER = "container"


# The stored columns of each kind are its rows' layout on disk: bit i of a stored row's mask
# is its i-th column (`sqlite.codec.header`: up to 64 columns). The layouts are written out
# here, not derived from the catalogue, so that a metric added anywhere in the catalogue
# changes no stored row's meaning: a new column goes last. tests/storage/test_stored_layout.py
# pins them and checks that every metric of the catalogue has its column.
# Pressure stall columns, as the node and the pod have them (the node has no CPU "full").
_CPU_SOME = ("cpu_pressure_some_seconds_total", "cpu_pressure_some_ratio")
_CPU_FULL = ("cpu_pressure_full_seconds_total", "cpu_pressure_full_ratio")
_MEMORY_AND_IO_PRESSURE = (
    "memory_pressure_some_seconds_total",
    "memory_pressure_some_ratio",
    "memory_pressure_full_seconds_total",
    "memory_pressure_full_ratio",
    "io_pressure_some_seconds_total",
    "io_pressure_some_ratio",
    "io_pressure_full_seconds_total",
    "io_pressure_full_ratio",
)
NODE_COLUMNS = (
    "cpu_usage_seconds_total",
    "cpu_cores",
    "cpu_percent",
    "memory_total_bytes",
    "memory_available_bytes",
    "memory_used_bytes",
    "memory_percent",
    "disk_read_bytes_total",
    "disk_write_bytes_total",
    "disk_read_bps",
    "disk_write_bps",
    "network_rx_bytes_total",
    "network_tx_bytes_total",
    "network_rx_bps",
    "network_tx_bps",
    "load1",
    "load5",
    "load15",
    "fs_total_bytes",
    "fs_used_bytes",
    "pod_count",
    "cpu_capacity_cores",  # node_info.cpu_count
    "clock_skew_seconds",
    "memory_oom_kills_total",
    *_CPU_SOME,
    *_MEMORY_AND_IO_PRESSURE,
)
_CGROUP_COLUMNS = (
    "cpu_usage_seconds_total",
    "cpu_cores",
    "cpu_throttled_seconds_total",
    "cpu_limit_cores",
    "cpu_request_cores",
    "memory_usage_bytes",
    "memory_working_set_bytes",
    "memory_limit_bytes",
    "memory_request_bytes",
    "disk_read_bytes_total",
    "disk_write_bytes_total",
    "disk_read_bps",
    "disk_write_bps",
)
_CGROUP_SIGNALS = (
    "cpu_periods_total",
    "cpu_throttled_periods_total",
    "cpu_throttled_percent",
    "memory_anon_bytes",
    "memory_file_bytes",
    "memory_oom_kills_total",
)
# From the metadata source, not the cgroups.
_STATUS_COLUMNS = ("restarts_total", "last_termination_oom_killed")
CONTAINER_COLUMNS = (*_CGROUP_COLUMNS, *_CGROUP_SIGNALS, *_STATUS_COLUMNS)
POD_COLUMNS = (
    *_CGROUP_COLUMNS,
    "network_rx_bytes_total",
    "network_tx_bytes_total",
    "network_rx_bps",
    "network_tx_bps",
    *_CGROUP_SIGNALS,
    *_CPU_SOME,
    *_CPU_FULL,
    *_MEMORY_AND_IO_PRESSURE,
    *_STATUS_COLUMNS,
)

# A group's sum: in each bucket, the sum over its members of these columns (only rates and
# gauges, never cumulative counters: contract section 4), and how many members reported.
# Namespaces and deployments are made of pods, the cluster of nodes. How a sum is taken is
# `GroupSum`, below. Written out, not picked from POD_COLUMNS: it is layout 2 of the group
# kinds' rows, pinned as the stored columns are, and a pod's new gauge must not change it.
GROUP_SUMS = (
    "cpu_cores",
    "cpu_limit_cores",
    "cpu_request_cores",
    "memory_usage_bytes",
    "memory_working_set_bytes",
    "memory_limit_bytes",
    "memory_request_bytes",
    "disk_read_bps",
    "disk_write_bps",
    "network_rx_bps",
    "network_tx_bps",
)
GROUP_COLUMNS = (*GROUP_SUMS, "pod_count")
CLUSTER_SUMS = (
    "cpu_cores",
    "disk_read_bps",
    "disk_write_bps",
    "network_rx_bps",
    "network_tx_bps",
    "memory_used_bytes",
    "memory_total_bytes",
    "pod_count",
    "cpu_capacity_cores",
)
CLUSTER_COLUMNS = (*CLUSTER_SUMS, "node_count")
CLUSTER_DERIVED = ("cpu_percent", "memory_percent")  # computed from a stored row when read


@dataclass(frozen=True)
class KindSpec:
    """What one kind of entity is, in the API and in the stores."""

    plural: str  # its name in the API's paths and messages
    identity: dict[str, str]  # the API's identity fields, in order -> the label each is kept as
    key: tuple[str, ...]  # the identity fields that tell one entity of the kind from another
    filters: dict[str, str]  # what a list is filtered by -> the identity field it matches
    order: tuple[str, ...]  # the filters a list is ordered by
    exposed: tuple[str, ...] | None  # the identity fields /metrics labels its values with
    columns: tuple[str, ...]  # its stored columns (see above)
    member: Scope  # whose reports it is made of: its own, or (a group) its members'
    group: bool = False  # a sum over its members (`GROUP_SUMS`, `CLUSTER_SUMS`)


_POD_IDENTITY = {
    "namespace": "namespace",
    "name": "pod",
    "uid": "uid",
    "node": "node",
    "deployment": "deployment",
    "workload_kind": "workload_kind",
    "workload": "workload",
}

KINDS: dict[EntityKind, KindSpec] = {
    EntityKind.NODE: KindSpec(
        plural="nodes",
        identity={"node": "node"},
        key=("node",),
        filters={"name": "node"},
        order=("name",),
        exposed=("node",),
        columns=NODE_COLUMNS,
        member=Scope.NODE,
    ),
    EntityKind.POD: KindSpec(
        plural="pods",
        identity=_POD_IDENTITY,
        key=("uid",),
        filters={f: f for f in ("namespace", "name", "node", "deployment", "uid")},
        order=("namespace", "name", "uid"),
        exposed=("namespace", "name", "uid", "node", "deployment"),
        columns=POD_COLUMNS,
        member=Scope.POD,
    ),
    EntityKind.NAMESPACE: KindSpec(
        plural="namespaces",
        identity={"namespace": "namespace"},
        key=("namespace",),
        filters={"namespace": "namespace"},
        order=("namespace",),
        exposed=("namespace",),
        columns=GROUP_COLUMNS,
        member=Scope.POD,
        group=True,
    ),
    EntityKind.DEPLOYMENT: KindSpec(
        plural="deployments",
        identity={"namespace": "namespace", "name": "deployment"},
        key=("namespace", "name"),
        filters={"namespace": "namespace", "name": "name"},
        order=("namespace", "name"),
        exposed=("namespace", "name"),
        columns=GROUP_COLUMNS,
        member=Scope.POD,
        group=True,
    ),
    EntityKind.CLUSTER: KindSpec(
        plural="cluster",
        identity={},
        key=(),
        filters={},
        order=(),
        exposed=(),
        columns=CLUSTER_COLUMNS,
        member=Scope.NODE,
        group=True,
    ),
    # A container is keyed by its name in its pod, or by its ID where the agent had no name:
    # the filter "key" is that name or ID.
    EntityKind.CONTAINER: KindSpec(
        plural="containers",
        identity={
            "namespace": "namespace",
            "pod": "pod",
            "uid": "uid",
            "node": "node",
            "name": "container",
            "container_id": "container_id",
        },
        key=("uid", "name"),
        filters={"namespace": "namespace", "pod": "pod", "uid": "uid", "key": "name"},
        order=("namespace", "pod", "uid", "key"),
        exposed=None,  # not in /metrics
        columns=CONTAINER_COLUMNS,
        member=Scope.CONTAINER,
    ),
}

# The identity fields of each kind in the API (contract section 4).
IDENTITY = {kind: tuple(spec.identity) for kind, spec in KINDS.items()}
STORED_COLUMNS = {kind: spec.columns for kind, spec in KINDS.items()}

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


def columns(kind: EntityKind) -> tuple[str, ...]:
    """The metric names an entity of this kind answers with, stored then derived."""
    return STORED_COLUMNS[kind] + (CLUSTER_DERIVED if kind is EntityKind.CLUSTER else ())


_CATALOGUE_ORDER = {metric.name: at for at, metric in enumerate(CATALOGUE)}


@functools.cache
def answered(kind: EntityKind) -> tuple[str, ...]:
    """The metric names an entity of this kind answers with, in the catalogue's order; the
    columns outside it last (the stored order is the disk's, not the reader's)."""
    return tuple(sorted(columns(kind), key=lambda name: _CATALOGUE_ORDER.get(name, len(CATALOGUE))))


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


_CAPACITY = NODE_COLUMNS.index("cpu_capacity_cores")
_node_metrics = operator.attrgetter(*(n for n in NODE_COLUMNS if n != "cpu_capacity_cores"))


def node_row(payload) -> list:
    """A payload's node figures in NODE_COLUMNS order."""
    values = list(_node_metrics(payload.node_metrics))
    values.insert(_CAPACITY, payload.node_info.cpu_count)
    return values


# A group's sum is exact: each member's value counts in its metric's smallest unit here
# (`Metric.decimals`: CPU in nanocores, as the metrics API counts it; rates in thousandths of a
# byte a second; bytes as they are), an integer, so that a sum kept as members come, go and are
# reported again equals the sum of the same members taken at once, to the last bit, in any
# order. The nodes' capacity counts as CPU does.
_SUMMED_AS = {"cpu_capacity_cores": "cpu_cores"}
SUM_UNITS = {
    name: 10 ** BY_NAME[_SUMMED_AS.get(name, name)].decimals
    for name in (*GROUP_SUMS, *CLUSTER_SUMS)
}
LIMITS = frozenset({"cpu_limit_cores", "memory_limit_bytes"})


class GroupSum:
    """The one definition of a group's sum, for one group kind: a vector of integers, the
    sums of its summed columns in `SUM_UNITS`, then how many members have a value in each
    column, then how many members there are (stored as it is by the embedded store: layout 2
    of the group kinds, pinned by tests/storage/test_stored_layout.py). A column's answer is
    its sum, None where no member has a value; a limit's is None (unlimited) where some member
    has none."""

    def __init__(self, kind: EntityKind) -> None:
        self.kind = kind
        self.summed = KINDS[kind].columns[:-1]
        self.width = 2 * len(self.summed) + 1
        self.scales = tuple(SUM_UNITS[name] for name in self.summed)
        self.limits = tuple(i for i, name in enumerate(self.summed) if name in LIMITS)

    def member(self, values: Sequence) -> tuple:
        """A member's values of the summed columns in their units (None kept)."""
        return tuple(
            [
                None if value is None else round(value * scale)
                for value, scale in zip(values, self.scales, strict=True)
            ]
        )

    def total(self, members: Iterable[Sequence]) -> list[int]:
        """The vector of members given in their units (`member`)."""
        members = list(members)
        sums, counts = [], []
        for column in zip(*members, strict=True):
            present = [value for value in column if value is not None]
            sums.append(sum(present))
            counts.append(len(present))
        if not members:
            sums = counts = [0] * len(self.summed)
        return [*sums, *counts, len(members)]

    def answer(self, vector: Sequence[int]) -> list:
        """The group's values (its stored columns) from its vector."""
        width = len(self.summed)
        members = vector[-1]
        values = [
            None if count == 0 else total if scale == 1 else total / scale
            for total, count, scale in zip(
                vector[:width], vector[width:-1], self.scales, strict=True
            )
        ]
        for i in self.limits:
            if vector[width + i] < members:
                values[i] = None
        return [*values, members]


def add_vectors(a: Sequence[int], b: Sequence[int], sign: int = 1) -> list[int]:
    """Two `GroupSum` vectors added (sign 1) or the second taken from the first (-1)."""
    return [x + sign * y for x, y in zip(a, b, strict=True)]


GROUP_SUM = {kind: GroupSum(kind) for kind, spec in KINDS.items() if spec.group}
