"""Every metric cloudmon measures, declared once.

The payload schema, the README's table and the server's storage, exposition and OpenAPI
description are all derived from this catalogue.
"""

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"  # cumulative, only goes up until the source is reset
    GAUGE = "gauge"  # a level at the time of the sample
    RATE = "rate"  # a counter's increase per second over the sample's interval


class Scope(StrEnum):
    NODE = "node"
    POD = "pod"
    CONTAINER = "container"


NODE = frozenset({Scope.NODE})
POD = frozenset({Scope.POD})
NODE_AND_POD = frozenset({Scope.NODE, Scope.POD})
POD_AND_CONTAINER = frozenset({Scope.POD, Scope.CONTAINER})
ALL = frozenset(Scope)

# The decimal places a non-integer metric is counted to, by unit: CPU in nanocores, as the
# kubelet's summary API counts it (usageNanoCores); byte rates in thousandths of a byte a second.
# Group sums count in these units (storage.model.SUM_UNITS) and rates are sent rounded to them.
# Shares of time (pressure) to millionths, the microseconds the kernel counts in a second.
_DECIMALS_BY_UNIT = {"cores": 9, "bytes/s": 3, "ratio": 6}


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kind: Kind
    help: str
    scopes: frozenset[Scope]
    source: str
    rate_of: str | None = None  # for a RATE: the counter it is derived from
    # For a GAUGE taken from two counters: 100 x the first's increase / the second's, since
    # the previous sample.
    share_of: tuple[str, str] | None = None
    integer: bool = False
    by_server: bool = False  # measured by the server on receipt, not sent by the agent

    @property
    def decimals(self) -> int | None:
        """The decimal places it is counted to; None where it is kept as measured."""
        return 0 if self.integer else _DECIMALS_BY_UNIT.get(self.unit)

    def per_second(self, increase: float, seconds: float) -> float:
        """A RATE: its counter's increase over `seconds`, per second, to the rate's decimals."""
        return round(increase / seconds, self.decimals)

    def share(self, part: int, whole: int) -> float:
        """A share (`share_of`): 100 x part / whole, to hundredths of a percent (what a
        display shows, and decimals the store keeps in a few bits)."""
        return round(100 * part / whole, 2)


def _rate(name, unit, counter, help, scopes, source=None):
    return Metric(name, unit, Kind.RATE, help, scopes, source or f"rate of `{counter}`", counter)


_STALLED_ON = {"cpu": "CPU", "memory": "memory", "io": "IO"}
_STALLED = {
    "some": "some of its tasks were stalled waiting for {}",
    "full": "all its non-idle tasks were stalled waiting for {} at once",
}


def _pressure(resource: str, kind: str, scopes) -> tuple[Metric, Metric]:
    """A pressure stall counter (`agent.psi`) and its rate, the share of time stalled."""
    counter = f"{resource}_pressure_{kind}_seconds_total"
    stalled = _STALLED[kind].format(_STALLED_ON[resource])
    node = f"node: `/proc/pressure/{resource}`, " if Scope.NODE in scopes else ""
    source = (
        f"{node}pod: cgroup v2 `{resource}.pressure` (on hybrid hosts in the unified "
        f"hierarchy): the {kind} line's total (µs); null on cgroup v1 and where the kernel has "
        "no PSI (before 4.20, or booted with psi=0)"
    )
    return (
        Metric(counter, "seconds", Kind.COUNTER, f"time in which {stalled}", scopes, source),
        _rate(
            f"{resource}_pressure_{kind}_ratio",
            "ratio",
            counter,
            f"share of the interval in which {stalled}, 0-1",
            scopes,
        ),
    )


CATALOGUE: tuple[Metric, ...] = (
    Metric(
        "cpu_usage_seconds_total",
        "seconds",
        Kind.COUNTER,
        "CPU time used",
        ALL,
        "node: busy time of all CPUs in `/proc/stat` (user + nice + system + irq + softirq "
        "+ steal, USER_HZ ticks); pod and container: v2 `cpu.stat` usage_usec, v1 "
        "`cpuacct.usage` (ns)",
    ),
    _rate("cpu_cores", "cores", "cpu_usage_seconds_total", "CPU cores in use", ALL),
    Metric(
        "cpu_percent",
        "percent",
        Kind.GAUGE,
        "CPU in use as a share of all CPUs, 0-100",
        NODE,
        "100 x `cpu_cores` / number of CPUs",
    ),
    Metric(
        "cpu_throttled_seconds_total",
        "seconds",
        Kind.COUNTER,
        "time the CFS quota held the cgroup back",
        POD_AND_CONTAINER,
        "v2 `cpu.stat` throttled_usec; v1 `cpu.stat` throttled_time (ns)",
    ),
    Metric(
        "cpu_periods_total",
        "",
        Kind.COUNTER,
        "CFS periods in which the cgroup ran with a CPU quota",
        POD_AND_CONTAINER,
        "v2 and v1 `cpu.stat` nr_periods; 0 without a quota",
        integer=True,
    ),
    Metric(
        "cpu_throttled_periods_total",
        "",
        Kind.COUNTER,
        "CFS periods in which the CPU quota ran out",
        POD_AND_CONTAINER,
        "v2 and v1 `cpu.stat` nr_throttled",
        integer=True,
    ),
    Metric(
        "cpu_throttled_percent",
        "percent",
        Kind.GAUGE,
        "share of the sample's CFS periods in which the quota ran out, 0-100; null when no "
        "period ran (no quota, or idle)",
        POD_AND_CONTAINER,
        "100 x the increase of `cpu_throttled_periods_total` / that of `cpu_periods_total` "
        "since the previous sample, to hundredths",
        share_of=("cpu_throttled_periods_total", "cpu_periods_total"),
    ),
    *_pressure("cpu", "some", NODE_AND_POD),
    # The node's CPU "full" is zero by the kernel's definition: pods only.
    *_pressure("cpu", "full", POD),
    Metric(
        "cpu_limit_cores",
        "cores",
        Kind.GAUGE,
        "CPU limit; null when unlimited",
        POD_AND_CONTAINER,
        "v2 `cpu.max` quota / period; v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`",
    ),
    Metric(
        "cpu_request_cores",
        "cores",
        Kind.GAUGE,
        "CPU request of the pod spec; null when unknown",
        POD_AND_CONTAINER,
        "the pod spec, from the metadata source (pod: sum of its containers)",
    ),
    Metric(
        "memory_total_bytes",
        "bytes",
        Kind.GAUGE,
        "physical memory",
        NODE,
        "`/proc/meminfo` MemTotal",
        integer=True,
    ),
    Metric(
        "memory_available_bytes",
        "bytes",
        Kind.GAUGE,
        "memory available for new work without swapping",
        NODE,
        "`/proc/meminfo` MemAvailable",
        integer=True,
    ),
    Metric(
        "memory_used_bytes",
        "bytes",
        Kind.GAUGE,
        "memory in use",
        NODE,
        "MemTotal - MemAvailable",
        integer=True,
    ),
    Metric(
        "memory_percent",
        "percent",
        Kind.GAUGE,
        "memory in use as a share of the total, 0-100",
        NODE,
        "100 x `memory_used_bytes` / `memory_total_bytes`",
    ),
    Metric(
        "memory_usage_bytes",
        "bytes",
        Kind.GAUGE,
        "memory charged to the cgroup, page cache included",
        POD_AND_CONTAINER,
        "v2 `memory.current`; v1 `memory.usage_in_bytes`",
        integer=True,
    ),
    Metric(
        "memory_working_set_bytes",
        "bytes",
        Kind.GAUGE,
        "memory the kernel cannot easily reclaim, as the kubelet counts it",
        POD_AND_CONTAINER,
        "usage - `memory.stat` inactive_file (v1: total_inactive_file), not below 0",
        integer=True,
    ),
    Metric(
        "memory_anon_bytes",
        "bytes",
        Kind.GAUGE,
        "anonymous memory (heaps, stacks, private mappings): reclaimable only by swapping",
        POD_AND_CONTAINER,
        "v2 `memory.stat` anon; v1 `memory.stat` total_rss",
        integer=True,
    ),
    Metric(
        "memory_file_bytes",
        "bytes",
        Kind.GAUGE,
        "page cache charged to the cgroup (files read and written, tmpfs and shared memory)",
        POD_AND_CONTAINER,
        "v2 `memory.stat` file; v1 `memory.stat` total_cache",
        integer=True,
    ),
    Metric(
        "memory_oom_kills_total",
        "",
        Kind.COUNTER,
        "processes the kernel's OOM killer killed; null where the kernel does not count them",
        ALL,
        "node: `/proc/vmstat` oom_kill (Linux 4.13+); pod: v2 `memory.events` oom_kill (its "
        "containers' included), v1 `memory.oom_control` oom_kill of the pod and its containers "
        "added up (v1 counts a kill in the killed process's own cgroup only); container: the "
        "same file of its own cgroup. A container's count goes with its cgroup when it "
        "restarts",
        integer=True,
    ),
    *_pressure("memory", "some", NODE_AND_POD),
    *_pressure("memory", "full", NODE_AND_POD),
    Metric(
        "restarts_total",
        "",
        Kind.COUNTER,
        "times the container was restarted; a pod's: all its containers' together",
        POD_AND_CONTAINER,
        "the metadata source: the API server's and the kubelet's "
        "`containerStatuses[].restartCount` (init containers' too), crictl's `attempt`; null "
        "without one",
        integer=True,
    ),
    Metric(
        "last_termination_oom_killed",
        "",
        Kind.GAUGE,
        "1 where the container last ended killed for want of memory, else 0; a pod's: how many "
        "of its containers did",
        POD_AND_CONTAINER,
        "the API server and the kubelet: `containerStatuses[].lastState.terminated.reason` is "
        "`OOMKilled`; null from crictl, which does not tell, and without a metadata source",
        integer=True,
    ),
    Metric(
        "memory_limit_bytes",
        "bytes",
        Kind.GAUGE,
        "memory limit; null when unlimited",
        POD_AND_CONTAINER,
        "v2 `memory.max`; v1 `memory.limit_in_bytes`",
        integer=True,
    ),
    Metric(
        "memory_request_bytes",
        "bytes",
        Kind.GAUGE,
        "memory request of the pod spec; null when unknown",
        POD_AND_CONTAINER,
        "the pod spec, from the metadata source (pod: sum of its containers)",
        integer=True,
    ),
    Metric(
        "disk_read_bytes_total",
        "bytes",
        Kind.COUNTER,
        "bytes read from block devices",
        ALL,
        "node: `/proc/diskstats` sectors read x 512, whole disks only; pod and container: "
        "v2 `io.stat` rbytes, v1 blkio Read, summed over physical disks",
        integer=True,
    ),
    Metric(
        "disk_write_bytes_total",
        "bytes",
        Kind.COUNTER,
        "bytes written to block devices",
        ALL,
        "node: `/proc/diskstats` sectors written x 512, whole disks only; pod and "
        "container: v2 `io.stat` wbytes, v1 blkio Write, summed over physical disks",
        integer=True,
    ),
    _rate("disk_read_bps", "bytes/s", "disk_read_bytes_total", "disk read throughput", ALL),
    _rate("disk_write_bps", "bytes/s", "disk_write_bytes_total", "disk write throughput", ALL),
    *_pressure("io", "some", NODE_AND_POD),
    *_pressure("io", "full", NODE_AND_POD),
    Metric(
        "network_rx_bytes_total",
        "bytes",
        Kind.COUNTER,
        "bytes received",
        frozenset({Scope.NODE, Scope.POD}),
        "node: `<proc>/1/net/dev` without lo and pod-side virtual interfaces; pod: "
        "`/proc/<pid>/net/dev` of a process in the pod, all but lo; null for host-network pods",
        integer=True,
    ),
    Metric(
        "network_tx_bytes_total",
        "bytes",
        Kind.COUNTER,
        "bytes sent",
        frozenset({Scope.NODE, Scope.POD}),
        "as `network_rx_bytes_total`, transmit side",
        integer=True,
    ),
    _rate(
        "network_rx_bps",
        "bytes/s",
        "network_rx_bytes_total",
        "receive throughput",
        frozenset({Scope.NODE, Scope.POD}),
    ),
    _rate(
        "network_tx_bps",
        "bytes/s",
        "network_tx_bytes_total",
        "transmit throughput",
        frozenset({Scope.NODE, Scope.POD}),
    ),
    Metric("load1", "", Kind.GAUGE, "1-minute load average", NODE, "`/proc/loadavg`"),
    Metric("load5", "", Kind.GAUGE, "5-minute load average", NODE, "`/proc/loadavg`"),
    Metric("load15", "", Kind.GAUGE, "15-minute load average", NODE, "`/proc/loadavg`"),
    Metric(
        "fs_total_bytes",
        "bytes",
        Kind.GAUGE,
        "size of the host's root file system",
        NODE,
        "statvfs(rootfs): f_blocks x f_frsize",
        integer=True,
    ),
    Metric(
        "fs_used_bytes",
        "bytes",
        Kind.GAUGE,
        "space used on the host's root file system",
        NODE,
        "statvfs(rootfs): (f_blocks - f_bfree) x f_frsize, as df shows it",
        integer=True,
    ),
    Metric(
        "pod_count",
        "",
        Kind.GAUGE,
        "pods found on the node",
        NODE,
        "pod cgroups under kubepods",
        integer=True,
    ),
    Metric(
        "clock_skew_seconds",
        "seconds",
        Kind.GAUGE,
        "how far the node's clock runs ahead of the server's (negative: behind)",
        NODE,
        "the server: the payload's `sent_at` minus the server's clock when it arrived; "
        "null for agents that do not send `sent_at`",
        by_server=True,
    ),
)

BY_NAME = {m.name: m for m in CATALOGUE}


def metrics_for(scope: Scope) -> tuple[Metric, ...]:
    """The metrics that apply to one scope, in catalogue order."""
    return tuple(m for m in CATALOGUE if scope in m.scopes)


def rates_for(scope: Scope) -> tuple[Metric, ...]:
    """The RATE metrics of one scope."""
    return tuple(m for m in metrics_for(scope) if m.kind is Kind.RATE)


def shares_for(scope: Scope) -> tuple[Metric, ...]:
    """The metrics of one scope taken from two counters' increases (`Metric.share_of`)."""
    return tuple(m for m in metrics_for(scope) if m.share_of is not None)


def markdown_table() -> str:
    """The catalogue as the README's table of metrics."""
    lines = [
        "| metric | unit | kind | node | pod | container | what | how it is measured |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in CATALOGUE:
        marks = " | ".join("✓" if scope in m.scopes else "" for scope in Scope)
        lines.append(
            f"| `{m.name}` | {m.unit or '-'} | {m.kind} | {marks} | {m.help} | {m.source} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
