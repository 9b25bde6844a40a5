"""One sample of a node: the node's figures, every pod's and container's, with rates."""

import logging
import time

from cloudmon import payload
from cloudmon.agent.cgroups.base import Cgroups
from cloudmon.agent.files import read_text
from cloudmon.agent.metadata.base import ContainerMeta, PodMeta
from cloudmon.agent.node import collect_node
from cloudmon.agent.node.diskstats import stacked_device_numbers
from cloudmon.agent.paths import Roots
from cloudmon.agent.podnet import read_pod_network
from cloudmon.agent.rates import RateTracker
from cloudmon.metrics import Scope

log = logging.getLogger(__name__)

_NO_NETWORK = {"network_rx_bytes_total": None, "network_tx_bytes_total": None}


class Collector:
    """Takes samples of one node; keeps the previous sample's counters for the rates."""

    def __init__(
        self,
        roots: Roots,
        node_name: str,
        cgroups: Cgroups,
        metadata=None,
        clock=time.time,
        monotonic=time.monotonic,
    ):
        self.roots = roots
        self.node_name = node_name
        self.metadata = metadata
        self.cgroups = cgroups
        self._clock = clock
        self._monotonic = monotonic
        self._rates = RateTracker()
        self._last_sample: float | None = None
        # Whether a container ID is its pod's sandbox never changes: decided once.
        self._sandboxes: dict[str, bool] = {}
        self._sandboxes_seen: dict[str, bool] = {}

    def collect(self):
        """One payload (a msgspec struct) of the node as it is now."""
        timestamp = self._clock()
        now = self._monotonic()
        node = collect_node(self.roots.proc, self.roots.rootfs)
        stacked = stacked_device_numbers(node.disks)
        pod_cgroups = self.cgroups.find_pods()
        known = self.metadata.lookup(p.uid for p in pod_cgroups) if self.metadata else {}

        pods = []
        for pod_cgroup in pod_cgroups:
            pod = self._pod(pod_cgroup, known.get(pod_cgroup.uid), stacked)
            if pod is not None:
                pods.append(pod)

        node_metrics = dict(node.metrics)
        self._rates.apply(Scope.NODE, ("node",), now, node_metrics)
        cpu_count = node.info.get("cpu_count")
        cores = node_metrics.get("cpu_cores")
        node_metrics["cpu_percent"] = (
            100.0 * cores / cpu_count if cores is not None and cpu_count else None
        )
        node_metrics["pod_count"] = len(pods)
        self._rates.end_cycle()
        self._sandboxes, self._sandboxes_seen = self._sandboxes_seen, {}

        interval = None if self._last_sample is None else now - self._last_sample
        self._last_sample = now
        return payload.Payload(
            schema=payload.SCHEMA,
            node=self.node_name,
            timestamp=timestamp,
            interval=interval,
            node_info=payload.NodeInfo(**node.info, cgroup_version=self.cgroups.version),
            node_metrics=payload.NodeMetrics(**node_metrics),
            pods=pods,
        )

    def _pod(self, pod_cgroup, meta: PodMeta | None, stacked):
        # Each rate is taken over the time between two reads of its own files: a cycle can
        # spend a while elsewhere (a metadata source answering) between the first and last.
        read_at = self._monotonic()
        metrics = self.cgroups.read(pod_cgroup.path, stacked)
        if metrics is None:
            return None  # the pod went away while it was read
        sandboxes = []
        containers = []
        for container in pod_cgroup.containers:
            if self._is_sandbox(container, meta):
                sandboxes.append(container)
                continue
            built = self._container(pod_cgroup.uid, container, meta, stacked)
            if built is not None:
                containers.append(built)

        metrics.update(self.cgroups.read_pressure(pod_cgroup.path))
        if not self.cgroups.oom_kills_below:
            metrics["memory_oom_kills_total"] = _oom_kills_with(metrics, containers)
        if meta is not None and meta.host_network:
            metrics.update(_NO_NETWORK)
        else:
            traffic = read_pod_network(
                self.roots.proc, self._network_pids(sandboxes + list(pod_cgroup.containers))
            )
            metrics["network_rx_bytes_total"], metrics["network_tx_bytes_total"] = traffic or (
                None,
                None,
            )
        if meta is not None:
            metrics["cpu_request_cores"] = meta.cpu_request_cores
            metrics["memory_request_bytes"] = meta.memory_request_bytes
            metrics["restarts_total"] = meta.restarts
            metrics["last_termination_oom_killed"] = meta.oom_killed_containers
        self._rates.apply(Scope.POD, ("pod", pod_cgroup.uid), read_at, metrics)
        return payload.Pod(
            uid=pod_cgroup.uid,
            name=meta.name if meta else None,
            namespace=meta.namespace if meta else None,
            deployment=meta.deployment if meta else None,
            workload_kind=meta.workload_kind if meta else None,
            workload=meta.workload if meta else None,
            node=self.node_name,
            qos=pod_cgroup.qos,
            host_network=meta.host_network if meta else None,
            containers=containers,
            **metrics,
        )

    def _container(self, uid, container, meta: PodMeta | None, stacked):
        read_at = self._monotonic()
        metrics = self.cgroups.read(container.path, stacked)
        if metrics is None:
            return None
        container_meta = _container_meta(meta, container.id)
        if container_meta is not None:
            metrics["cpu_request_cores"] = container_meta.cpu_request_cores
            metrics["memory_request_bytes"] = container_meta.memory_request_bytes
            metrics["restarts_total"] = container_meta.restarts
            last_oom = container_meta.last_oom_killed
            metrics["last_termination_oom_killed"] = None if last_oom is None else int(last_oom)
        self._rates.apply(Scope.CONTAINER, ("container", uid, container.id), read_at, metrics)
        return payload.Container(
            id=container.id,
            name=container_meta.name if container_meta else None,
            **metrics,
        )

    def _network_pids(self, containers):
        # All the pod's containers share its network namespace: the sandbox's pause process
        # holds it, else any container's process (CRI-O without a sandbox).
        for container in containers:
            yield from self.cgroups.pids(container.path)

    def _is_sandbox(self, container, meta: PodMeta | None) -> bool:
        decided = self._sandboxes.get(container.id)
        if decided is None:
            decided = self._decide_sandbox(container, meta)
        if decided is not None:
            self._sandboxes_seen[container.id] = decided
        return bool(decided)

    def _decide_sandbox(self, container, meta: PodMeta | None) -> bool | None:
        if meta is not None:
            if container.id in meta.sandbox_ids:
                return True
            if container.id in meta.containers:
                return False
        pids = self.cgroups.pids(container.path)
        if not pids:
            return None  # not started yet: decided on a later cycle
        # The sandbox runs the pause image (registry.k8s.io/pause), whose one process is
        # /pause; CRI-O usually drops the sandbox altogether.
        if any(read_text(f"{self.roots.proc}/{pid}/comm") == "pause\n" for pid in pids):
            return True
        if meta is not None:
            self.metadata.request_refresh()  # a container the source does not know yet
        return False


def _oom_kills_with(pod: dict, containers) -> int | None:
    """A pod's OOM kills where each is counted in the killed process's cgroup alone (v1):
    its own cgroup's and its containers' added up."""
    counts = [pod["memory_oom_kills_total"], *(c.memory_oom_kills_total for c in containers)]
    return None if None in counts else sum(counts)


def _container_meta(meta: PodMeta | None, container_id: str) -> ContainerMeta | None:
    if meta is None:
        return None
    return meta.containers.get(container_id)
