"""A synthetic cluster for trying cloudmon out: a few nodes running a small shop, a payments
service, monitoring and kube-system, sent to a server as its agents would send them.

First the history (arrays of consecutive samples per node, as agents catching up send them),
then a sample per node every 10 s. The same seed and start give the same payloads.
"""

import collections
import dataclasses
import logging
import math
import random
import signal
import time
import uuid
from dataclasses import dataclass, field

from cloudmon import payload
from cloudmon.agent.sender import Sender
from cloudmon.agent.spool import MemorySpool
from cloudmon.metrics import BY_NAME

log = logging.getLogger(__name__)

INTERVAL = 10.0  # seconds between samples, as the agent's default
CHUNK = 60  # consecutive samples of a node sent in one array while catching up
DAY = 86400.0
MiB = 1 << 20
GiB = 1 << 30
PAGE = 4096  # memory is charged to cgroups in pages, 4 KiB on x86-64
# Characters of generated names (k8s.io/apimachinery/pkg/util/rand: no vowels, no 0, 1, 3).
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class ContainerSpec:
    """A container of a workload: what it typically uses and its resources."""

    name: str
    cpu: float  # cores in use at an average moment
    memory: int  # working set at an average moment, bytes
    cpu_request: float | None = None
    cpu_limit: float | None = None
    memory_request: int | None = None
    memory_limit: int | None = None
    cache: float = 0.2  # reclaimable page cache, as a share of the working set
    disk_read: float = 0.0  # bytes/s at an average moment
    disk_write: float = 0.0


@dataclass(frozen=True)
class WorkloadSpec:
    """A workload: its pods' containers and network, and how many of the pods it gets."""

    namespace: str
    kind: str  # Deployment, StatefulSet or DaemonSet (one pod on every node)
    name: str
    containers: tuple[ContainerSpec, ...]
    network: tuple[float, float] | None  # (received, sent) bytes/s; None on the host network
    weight: int = 1  # share of the pods left after the DaemonSets'
    # Whether the pods carry app.kubernetes.io/name, which the agent reports as the deployment
    # of a pod whose workload is not a Deployment (kube-system's carry k8s-app instead).
    app_label: bool = True

    @property
    def deployment(self) -> str | None:
        """What the agent reports as its pods' deployment (the contract's rule)."""
        return self.name if self.kind == "Deployment" or self.app_label else None

    @property
    def qos(self) -> str:
        """Its pods' QoS class, as Kubernetes derives it from the requests and limits."""
        resources = [
            (c.cpu_request, c.cpu_limit, c.memory_request, c.memory_limit) for c in self.containers
        ]
        if all(
            cpu_limit
            and memory_limit
            and cpu_request in (None, cpu_limit)
            and memory_request in (None, memory_limit)
            for cpu_request, cpu_limit, memory_request, memory_limit in resources
        ):
            return "guaranteed"
        if any(value is not None for figures in resources for value in figures):
            return "burstable"
        return "besteffort"


# A log shipper beside a workload's own container(s).
SIDECAR = ContainerSpec("log-shipper", 0.01, 25 * MiB, 0.02, None, 32 * MiB, None, 0.5)

# Requests and limits as the projects' own manifests set them where there is one
# (kubeadm's CoreDNS, Calico, manifests/monitor.yaml), typical figures elsewhere.
WORKLOADS: tuple[WorkloadSpec, ...] = (
    WorkloadSpec(
        "kube-system",
        "DaemonSet",
        "kube-proxy",
        (ContainerSpec("kube-proxy", 0.004, 22 * MiB),),
        None,
        app_label=False,
    ),
    WorkloadSpec(
        "kube-system",
        "DaemonSet",
        "calico-node",
        (ContainerSpec("calico-node", 0.03, 110 * MiB, cpu_request=0.25),),
        None,
        app_label=False,
    ),
    WorkloadSpec(
        "monitoring",
        "DaemonSet",
        "cloudmon-agent",
        (ContainerSpec("agent", 0.003, 25 * MiB, 0.01, 0.2, 48 * MiB, 128 * MiB),),
        (1_000.0, 4_000.0),
    ),
    WorkloadSpec(
        "shop",
        "Deployment",
        "web",
        (
            ContainerSpec("nginx", 0.06, 30 * MiB, 0.1, 0.5, 64 * MiB, 128 * MiB, disk_read=2e3),
            SIDECAR,
        ),
        (150e3, 600e3),
        weight=3,
    ),
    WorkloadSpec(
        "shop",
        "Deployment",
        "cart",
        (ContainerSpec("cart", 0.12, 160 * MiB, 0.2, 1.0, 256 * MiB, 512 * MiB),),
        (80e3, 120e3),
        weight=2,
    ),
    WorkloadSpec(
        "shop",
        "Deployment",
        "catalog",
        # Its peaks reach the limit: the CPU throttling a dashboard should show.
        (ContainerSpec("catalog", 0.18, 280 * MiB, 0.25, 0.25, 512 * MiB, 512 * MiB),),
        (40e3, 300e3),
        weight=2,
    ),
    WorkloadSpec(
        "shop",
        "StatefulSet",
        "redis",
        (
            ContainerSpec(
                "redis", 0.02, 200 * MiB, 0.5, 0.5, 512 * MiB, 512 * MiB, 0.1, disk_write=40e3
            ),
        ),
        (100e3, 100e3),
    ),
    WorkloadSpec(
        "payments",
        "Deployment",
        "api",
        (
            ContainerSpec("api", 0.1, 220 * MiB, 0.5, 0.5, 512 * MiB, 512 * MiB),
            ContainerSpec("envoy", 0.03, 45 * MiB, 0.1, 0.5, 128 * MiB, 256 * MiB),
        ),
        (60e3, 60e3),
        weight=2,
    ),
    WorkloadSpec(
        "payments",
        "Deployment",
        "worker",
        (ContainerSpec("worker", 0.25, 350 * MiB, 0.25, None, 512 * MiB, None, 0.5, 50e3, 20e3),),
        (20e3, 10e3),
    ),
    WorkloadSpec(
        "payments",
        "StatefulSet",
        "postgres",
        (ContainerSpec("postgres", 0.08, 600 * MiB, 0.5, 2.0, GiB, 2 * GiB, 1.0, 200e3, 400e3),),
        (100e3, 300e3),
    ),
    WorkloadSpec(
        "kube-system",
        "Deployment",
        "coredns",
        (ContainerSpec("coredns", 0.003, 20 * MiB, 0.1, None, 70 * MiB, 170 * MiB),),
        (8e3, 10e3),
        app_label=False,
    ),
    WorkloadSpec(
        "monitoring",
        "Deployment",
        "grafana",
        (ContainerSpec("grafana", 0.01, 90 * MiB, 0.1, 0.5, 128 * MiB, 256 * MiB),),
        (5e3, 30e3),
    ),
)
DAEMONSETS = tuple(w for w in WORKLOADS if w.kind == "DaemonSet")


def with_containers(workload: WorkloadSpec, count: int) -> WorkloadSpec:
    """The workload with exactly `count` containers a pod: its first ones, then sidecars."""
    specs = workload.containers[:count]
    sidecars = [
        dataclasses.replace(SIDECAR, name=f"{SIDECAR.name}-{i}") for i in range(len(specs), count)
    ]
    return dataclasses.replace(workload, containers=(*specs, *sidecars))


# Each node runs every DaemonSet and at least one other pod, so that there is a shop.
MIN_PODS_PER_NODE = len(DAEMONSETS) + 1

# What runs outside the pods on a node: kubelet, containerd, the kernel, journald, sshd.
SYSTEM_CPU = 0.15  # cores
SYSTEM_MEMORY = 900 * MiB
SYSTEM_NETWORK = 20e3  # bytes/s each way
SYSTEM_DISK_WRITE = 30e3  # bytes/s
# The sandbox (pause) container a pod's cgroup holds besides those listed: a static binary
# that sleeps, under 1 MiB.
PAUSE_MEMORY = 1 * MiB
FS_TOTAL = 100 * GiB  # the root volume; GKE's default boot disk is 100 GB
KERNEL = "6.1.0-28-amd64"  # Debian 12's


def _activity(t: float, period: float, phase: float) -> float:
    """How busy a workload is at unix time t, around 1: a working day plus a shorter cycle."""
    # sin peaks a quarter of the way into its cycle: here at 15:00 UTC, lowest at 03:00.
    day = math.sin(2 * math.pi * (t / DAY - 0.375))
    return 1 + 0.3 * day + 0.2 * math.sin(2 * math.pi * t / period + phase)


# The largest _activity() and _jitter() can be: nodes are sized for demands up to these.
_PEAK = 1.5 * 1.5


def _jitter(rng: random.Random, spread: float = 0.15) -> float:
    """A factor around 1 for one sample's noise, within 0.5 to 1.5."""
    return 1 + max(-0.5, min(0.5, rng.gauss(0, spread)))


def _pages(n: float) -> int:
    return int(n) // PAGE * PAGE


def _rate(name: str, delta: float, dt: float | None) -> float | None:
    return None if dt is None else BY_NAME[name].per_second(delta, dt)


def _share(name: str, part: int, whole: int, dt: float | None) -> float | None:
    return None if dt is None or not whole else BY_NAME[name].share(part, whole)


def _name(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(_NAME_CHARS, k=length))


class _Wander:
    """A slow random walk around 0 within ±0.2, for gauges such as memory (AR(1))."""

    def __init__(self) -> None:
        self.value = 0.0

    def step(self, rng: random.Random) -> float:
        self.value = max(-0.2, min(0.2, 0.95 * self.value + rng.gauss(0, 0.015)))
        return self.value


@dataclass
class _Container:
    spec: ContainerSpec
    id: str
    age: float  # seconds since it started
    wander: _Wander = field(default_factory=_Wander, init=False)

    def __post_init__(self) -> None:
        # Cumulative counters since the container started, as if it had run at its average; CPU
        # time in whole microseconds, as cgroup v2's cpu.stat counts it (usage_usec,
        # throttled_usec).
        self.cpu_usec = int(self.spec.cpu * self.age * 1e6)
        self.throttled_usec = 0
        # CFS periods with a quota (100 ms each) and those in which it ran out.
        self.periods = int(self.age * 10) if self.spec.cpu_limit is not None else 0
        self.throttled_periods = 0
        self.oom_kills = 0
        self.at_limit = False
        self.read = int(self.spec.disk_read * self.age)
        self.write = int(self.spec.disk_write * self.age)

    def sample(self, dt: float | None, activity: float, rng: random.Random) -> dict:
        """This container's figures; counters advance over dt seconds (None: the first sample)."""
        spec = self.spec
        cpu_before = self.cpu_usec / 1e6
        periods_before, throttled_before = self.periods, self.throttled_periods
        read = write = 0
        if dt is not None:
            demand = spec.cpu * activity * _jitter(rng)
            cores = demand if spec.cpu_limit is None else min(demand, spec.cpu_limit)
            if spec.cpu_limit is not None:
                self.periods += round(dt * 10)
            if demand > cores:
                # The CFS quota runs out early in each 100 ms period, for this share of it.
                self.throttled_usec += round(dt * (1 - cores / demand) * 1e6)
                self.throttled_periods += round(dt * 10 * min(1.0, 2 * (demand / cores - 1)))
            read = round(spec.disk_read * activity * _jitter(rng, 0.5) * dt)
            write = round(spec.disk_write * activity * _jitter(rng, 0.5) * dt)
            self.cpu_usec += round(cores * dt * 1e6)
            self.read += read
            self.write += write
        cpu = self.cpu_usec / 1e6
        # Memory follows the load loosely and wanders; page cache fills what the limit leaves.
        working_set = spec.memory * (1 + 0.3 * (activity - 1)) * (1 + self.wander.step(rng))
        usage = working_set * (1 + spec.cache)
        if spec.memory_limit is not None:
            # Reaching the limit, the kernel kills a process of the container once.
            at_limit = working_set >= 0.9 * spec.memory_limit
            self.oom_kills += at_limit and not self.at_limit
            self.at_limit = at_limit
            working_set = min(working_set, 0.9 * spec.memory_limit)
            usage = min(usage, spec.memory_limit)
        anon = _pages(0.9 * working_set)
        return {
            "id": self.id,
            "name": spec.name,
            "cpu_usage_seconds_total": cpu,
            "cpu_cores": _rate("cpu_cores", cpu - cpu_before, dt),
            "cpu_throttled_seconds_total": self.throttled_usec / 1e6,
            "cpu_periods_total": self.periods,
            "cpu_throttled_periods_total": self.throttled_periods,
            "cpu_throttled_percent": _share(
                "cpu_throttled_percent",
                self.throttled_periods - throttled_before,
                self.periods - periods_before,
                dt,
            ),
            "cpu_limit_cores": spec.cpu_limit,
            "cpu_request_cores": spec.cpu_request,
            "memory_usage_bytes": _pages(usage),
            "memory_working_set_bytes": _pages(working_set),
            "memory_anon_bytes": anon,
            "memory_file_bytes": _pages(usage) - anon,
            "memory_oom_kills_total": self.oom_kills,
            # The kubelet restarts a container the OOM killer ended.
            "restarts_total": self.oom_kills,
            "last_termination_oom_killed": int(self.oom_kills > 0),
            "memory_limit_bytes": spec.memory_limit,
            "memory_request_bytes": spec.memory_request,
            "disk_read_bytes_total": self.read,
            "disk_write_bytes_total": self.write,
            "disk_read_bps": _rate("disk_read_bps", read, dt),
            "disk_write_bps": _rate("disk_write_bps", write, dt),
        }


def _sum(name: str, values) -> float | None:
    """The sum, to the metric's decimals; None when any is (a first sample's rate, no limit)."""
    values = list(values)
    return None if None in values else round(sum(values), BY_NAME[name].decimals)


def _cpu_seconds(usec_counts) -> float:
    """CPU time as a parent cgroup counts it: its children's microseconds together."""
    return sum(usec_counts) / 1e6


# A pod's figures are its cgroup's: its containers' and the sandbox's (see _Pod.sample).
_SUMMED = (
    "cpu_cores",
    "cpu_limit_cores",
    "memory_usage_bytes",
    "memory_working_set_bytes",
    "memory_anon_bytes",
    "memory_file_bytes",
    "memory_oom_kills_total",
    "memory_limit_bytes",
    "disk_read_bytes_total",
    "disk_write_bytes_total",
    "disk_read_bps",
    "disk_write_bps",
)


_NETWORK = ("network_rx_bytes_total", "network_tx_bytes_total", "network_rx_bps", "network_tx_bps")


class _Traffic:
    """Bytes received and sent by a pod (or by a node outside its pods) and their rates."""

    def __init__(self, rates: tuple[float, float], age: float) -> None:
        self.rates = rates  # bytes/s at an average moment
        self.totals = [int(rate * age) for rate in rates]

    def sample(self, dt: float | None, activity: float, rng: random.Random) -> dict:
        deltas = [0, 0]
        if dt is not None:
            deltas = [round(rate * activity * _jitter(rng, 0.3) * dt) for rate in self.rates]
            self.totals = [total + delta for total, delta in zip(self.totals, deltas, strict=True)]
        per_second = [
            _rate(name, delta, dt) for name, delta in zip(_NETWORK[2:], deltas, strict=True)
        ]
        figures = (*self.totals, *per_second)
        return dict(zip(_NETWORK, figures, strict=True))


_POD_PRESSURE = tuple(
    f"{r}_pressure_{k}" for r in ("cpu", "memory", "io") for k in ("some", "full")
)
_NODE_PRESSURE = tuple(p for p in _POD_PRESSURE if p != "cpu_pressure_full")


class _Stalls:
    """Pressure stall counters (seconds stalled, in microseconds as the kernel counts them)
    and their rates, from each interval's shares of time stalled."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.usec = dict.fromkeys(names, 0)

    def sample(self, dt: float | None, shares: tuple[float, ...]) -> dict:
        figures = {}
        for (name, total), share in zip(self.usec.items(), shares, strict=True):
            stalled = 0 if dt is None else round(share * dt * 1e6)
            self.usec[name] = total + stalled
            figures[f"{name}_seconds_total"] = self.usec[name] / 1e6
            figures[f"{name}_ratio"] = _rate(f"{name}_ratio", stalled / 1e6, dt)
        return figures


@dataclass
class _Pod:
    workload: WorkloadSpec
    name: str
    uid: str
    node: str
    containers: list[_Container]
    traffic: _Traffic | None  # None on the host network: its traffic is the node's
    cycle: tuple[float, float]  # period and phase of the workload's shorter cycle
    stalls: _Stalls = field(default_factory=lambda: _Stalls(_POD_PRESSURE))

    def sample(self, t: float, dt: float | None, rng: random.Random) -> dict:
        """The pod as an agent reports it at time t, dt seconds after its previous sample."""
        workload = self.workload
        activity = _activity(t, *self.cycle)
        containers = [c.sample(dt, activity, rng) for c in self.containers]
        pod = {
            "uid": self.uid,
            "name": self.name,
            "namespace": workload.namespace,
            "deployment": workload.deployment,
            "workload_kind": workload.kind,
            "workload": workload.name,
            "node": self.node,
            "qos": workload.qos,
            "host_network": self.traffic is None,
            "containers": containers,
        }
        pod["cpu_usage_seconds_total"] = _cpu_seconds(c.cpu_usec for c in self.containers)
        pod["cpu_throttled_seconds_total"] = _cpu_seconds(c.throttled_usec for c in self.containers)
        for name in _SUMMED:
            pod[name] = _sum(name, (c[name] for c in containers))
        # Kubernetes adds up the containers' requests, counting a missing one as 0.
        for name in ("cpu_request_cores", "memory_request_bytes"):
            pod[name] = _sum(name, (c[name] or 0 for c in containers))
        for name in ("memory_usage_bytes", "memory_working_set_bytes", "memory_anon_bytes"):
            pod[name] += PAUSE_MEMORY
        # The pod's cgroup has a quota of its own where every container has one: its periods
        # run with the containers', and run out when the busiest container's do.
        at = max(range(len(containers)), key=lambda i: self.containers[i].throttled_periods)
        limited = all(c.periods for c in self.containers)
        pod["cpu_periods_total"] = max(c.periods for c in self.containers) if limited else 0
        pod["cpu_throttled_periods_total"] = self.containers[at].throttled_periods if limited else 0
        pod["cpu_throttled_percent"] = containers[at]["cpu_throttled_percent"] if limited else None
        # Stalls: on CPU with the load and where a quota runs out, on memory at a limit, on
        # IO where the writes keep the disk busy (from 20 MB/s on).
        throttled = (pod["cpu_throttled_percent"] or 0) / 100
        cpu_some = min(1.0, 0.002 + 0.01 * activity + throttled)
        memory_some = 0.02 if any(c.at_limit for c in self.containers) else 0.0
        io_some = min(0.5, max(0.0, (pod["disk_write_bps"] or 0) - 20e6) / 200e6)
        shares = (cpu_some, cpu_some / 2, memory_some, memory_some / 2, io_some, 0.7 * io_some)
        pod.update(self.stalls.sample(dt, shares))
        for name in ("restarts_total", "last_termination_oom_killed"):
            pod[name] = sum(c[name] for c in containers)
        if self.traffic is None:
            pod.update(dict.fromkeys(_NETWORK))
        else:
            pod.update(self.traffic.sample(dt, activity, rng))
        return pod


# Time constants of the load averages (kernel/sched/loadavg.c: EXP_1, EXP_5, EXP_15).
_LOAD_PERIODS = (60.0, 300.0, 900.0)
_NODE_SUMMED = (
    "cpu_cores",
    "disk_read_bytes_total",
    "disk_write_bytes_total",
    "disk_read_bps",
    "disk_write_bps",
)


class SimNode:
    """A node of the synthetic cluster: its pods and what runs beside them."""

    def __init__(
        self, name: str, pods: list[_Pod], uptime: float, start: float, rng: random.Random
    ) -> None:
        self.name = name
        self.pods = pods
        self.rng = rng
        self.boot_time = start - uptime
        specs = [c.spec for pod in pods for c in pod.containers]
        typical_cpu = SYSTEM_CPU + sum(c.cpu for c in specs)
        typical_memory = SYSTEM_MEMORY + sum(c.memory * (1 + c.cache) for c in specs)
        requested = sum(c.cpu_request or 0 for c in specs)
        # A machine with room for the pods' requests and peaks: 4n cores with 4 GiB a core (the
        # clouds' general-purpose machines: AWS m7i, GCP n2-standard), more memory if the pods
        # need over half of that.
        self.cpu_count = 4 * math.ceil(max(requested, _PEAK * typical_cpu) / 4)
        self.memory_total = 4 * GiB * max(self.cpu_count, math.ceil(2 * typical_memory / (4 * GiB)))
        self.fs_used = _pages(rng.uniform(0.25, 0.45) * FS_TOTAL)
        system = ContainerSpec("system", SYSTEM_CPU, SYSTEM_MEMORY, disk_write=SYSTEM_DISK_WRITE)
        self.system = _Container(system, "system", uptime)
        self.traffic = _Traffic((SYSTEM_NETWORK, SYSTEM_NETWORK), uptime)
        self.loads = [typical_cpu] * len(_LOAD_PERIODS)
        self.stalls = _Stalls(_NODE_PRESSURE)
        self.last: float | None = None

    def sample(self, t: float) -> dict:
        """The node's payload at time t; the first one has no interval and no rates."""
        rng = self.rng
        dt = None if self.last is None else t - self.last
        self.last = t
        system = self.system.sample(dt, 1.0, rng)
        pods = [pod.sample(t, dt, rng) for pod in self.pods]
        containers = [self.system, *(c for pod in self.pods for c in pod.containers)]
        metrics = {"cpu_usage_seconds_total": _cpu_seconds(c.cpu_usec for c in containers)}
        for name in _NODE_SUMMED:
            metrics[name] = _sum(name, (p[name] for p in [system, *pods]))
        # The host's interfaces carry the node's own traffic and that of pods with a network
        # namespace of their own (host-network pods' is in the former).
        traffic = [self.traffic.sample(dt, 1.0, rng), *(p for p in pods if not p["host_network"])]
        metrics.update({name: _sum(name, (p[name] for p in traffic)) for name in _NETWORK})
        cores = metrics["cpu_cores"]
        if cores is not None:
            runnable = cores * _jitter(rng, 0.3)
            self.loads = [
                load * math.exp(-dt / period) + runnable * (1 - math.exp(-dt / period))
                for load, period in zip(self.loads, _LOAD_PERIODS, strict=True)
            ]
        used = system["memory_working_set_bytes"] + sum(p["memory_working_set_bytes"] for p in pods)
        metrics.update(
            cpu_percent=None if cores is None else 100 * cores / self.cpu_count,
            memory_total_bytes=self.memory_total,
            memory_available_bytes=self.memory_total - used,
            memory_used_bytes=used,
            memory_percent=100 * used / self.memory_total,
            # /proc/loadavg prints them with two decimals
            load1=round(self.loads[0], 2),
            load5=round(self.loads[1], 2),
            load15=round(self.loads[2], 2),
            fs_total_bytes=FS_TOTAL,
            fs_used_bytes=self.fs_used,
            pod_count=len(pods),
            memory_oom_kills_total=sum(p["memory_oom_kills_total"] for p in pods),
        )
        # The node stalls on CPU as it fills, on IO as its disk does; it has memory to spare.
        cpu_some = 0.002 + 0.05 * (cores or 0) / self.cpu_count
        io_some = min(0.5, max(0.0, (metrics["disk_write_bps"] or 0) - 20e6) / 400e6)
        metrics.update(self.stalls.sample(dt, (cpu_some, 0.0, 0.0, io_some, 0.7 * io_some)))
        return {
            "schema": payload.SCHEMA,
            "node": self.name,
            "timestamp": t,
            "interval": dt,
            "node_info": {
                "cpu_count": self.cpu_count,
                "memory_total_bytes": self.memory_total,
                "kernel": KERNEL,
                "cgroup_version": 2,
                "boot_time": self.boot_time,
            },
            "node_metrics": metrics,
            "pods": pods,
        }


def build_cluster(
    nodes: int, pods_per_node: int, seed: int, start: float, containers: int | None = None
) -> list[SimNode]:
    """The synthetic cluster's nodes, first sampled at `start`; the same for the same arguments.

    Every node runs the DaemonSets; the other pods go to the other workloads in turn, as
    many to each as its weight, spread over the nodes. With `containers`, every pod has
    that many (see with_containers).
    """
    if nodes < 1 or pods_per_node < MIN_PODS_PER_NODE:
        raise ValueError(
            f"a demo cluster has at least 1 node and {MIN_PODS_PER_NODE} pods per node"
        )
    workloads = WORKLOADS
    if containers is not None:
        workloads = tuple(with_containers(w, containers) for w in WORKLOADS)
    rng = random.Random(seed)
    names = [f"worker-{i}" for i in range(1, nodes + 1)]
    placed = {name: [w for w in workloads if w.kind == "DaemonSet"] for name in names}
    others = [w for w in workloads if w.kind != "DaemonSet"]
    turns = [w for r in range(max(w.weight for w in others)) for w in others if w.weight > r]
    for k in range(nodes * (pods_per_node - len(DAEMONSETS))):
        placed[names[k % nodes]].append(turns[k % len(turns)])

    cycles = {w.name: (rng.uniform(900, 2700), rng.uniform(0, 2 * math.pi)) for w in workloads}
    # A Deployment's pods share its ReplicaSet's pod-template hash.
    hashes = {w.name: _name(rng, 10) for w in workloads}
    ordinals = collections.Counter()

    def pod_name(workload: WorkloadSpec) -> str:
        if workload.kind == "StatefulSet":
            ordinals[workload.name] += 1
            return f"{workload.name}-{ordinals[workload.name] - 1}"
        if workload.kind == "Deployment":
            return f"{workload.name}-{hashes[workload.name]}-{_name(rng, 5)}"
        return f"{workload.name}-{_name(rng, 5)}"

    cluster = []
    for node in names:
        uptime = rng.uniform(3, 30) * DAY
        pods = []
        for workload in placed[node]:
            age = rng.uniform(0.05, 1) * uptime
            pods.append(
                _Pod(
                    workload,
                    pod_name(workload),
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    node,
                    [
                        _Container(c, f"{rng.getrandbits(256):064x}", age)
                        for c in workload.containers
                    ],
                    None if workload.network is None else _Traffic(workload.network, age),
                    cycles[workload.name],
                )
            )
        cluster.append(SimNode(node, pods, uptime, start, random.Random(f"{seed}/{node}")))
    return cluster


class Refused(Exception):
    """The server refused samples of the demo (it logs why); the ones after would meet the same."""


class Demo:
    """The synthetic cluster sending its samples to a server, every INTERVAL from `start`."""

    def __init__(
        self,
        server_url: str,
        *,
        start: float,
        nodes: int = 4,
        pods_per_node: int = 12,
        seed: int = 1,
        token_file: str | None = None,
    ) -> None:
        self.nodes = build_cluster(nodes, pods_per_node, seed, start)
        self.senders = [
            Sender(server_url, spool=MemorySpool(CHUNK), token_file=token_file) for _ in self.nodes
        ]
        self.next_sample = start

    def catch_up(self, now: float, sleep=time.sleep) -> None:
        """Send every sample due by `now`: up to CHUNK consecutive ones of a node in an array."""
        while self.next_sample <= now:
            count = min(CHUNK, math.floor((now - self.next_sample) / INTERVAL) + 1)
            times = [self.next_sample + i * INTERVAL for i in range(count)]
            for node, sender in zip(self.nodes, self.senders, strict=True):
                for t in times:
                    sender.spool.append(payload.encode(node.sample(t)))
                # As an agent does: retried with backoff until the server takes them.
                while len(sender.spool):
                    sender.flush()
                    if len(sender.spool):
                        sleep(max(0.0, sender.retry_at - time.monotonic()))
                if sender.rejected:
                    raise Refused(f"the server refused samples of {node.name}")
            self.next_sample = times[-1] + INTERVAL

    def run(self, clock=time.time, sleep=time.sleep) -> None:
        """Send what is due, then a sample per node every INTERVAL, forever."""
        while True:
            self.catch_up(clock(), sleep)
            sleep(max(0.0, self.next_sample - clock()))


def run_demo(
    server: str,
    *,
    nodes: int = 4,
    pods_per_node: int = 12,
    history: float = 3600.0,
    seed: int = 1,
    token_file: str | None = None,
) -> int:
    """Send `history` seconds of a synthetic cluster to the server, then live samples until
    Ctrl-C or SIGTERM; the process's exit status."""
    try:
        demo = Demo(
            server,
            start=time.time() - history,
            nodes=nodes,
            pods_per_node=pods_per_node,
            seed=seed,
            token_file=token_file,
        )
    except ValueError as error:  # too few nodes or pods, a server URL that is not http(s)
        log.error("cannot start: %s", error)
        return 2
    # Also where a shell started it in the background (SIGINT ignored) and stops it with SIGTERM.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    namespaces = ", ".join(sorted({w.namespace for w in WORKLOADS}))
    log.info(
        "a demo cluster of %d nodes and %d pods (namespaces %s); sending %g s of history to %s",
        nodes,
        nodes * pods_per_node,
        namespaces,
        history,
        server,
    )
    try:
        demo.catch_up(time.time())
        log.info(
            "history sent; a sample per node every %g s until Ctrl-C. See %s/ or run"
            " `cloudmon top pods -n shop --server %s`",
            INTERVAL,
            server,
            server,
        )
        demo.run()
    except Refused as error:
        log.error("%s; stopping", error)
        return 1
    except KeyboardInterrupt:
        log.info("stopped")
    return 0
