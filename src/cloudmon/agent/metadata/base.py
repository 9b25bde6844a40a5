"""What a metadata source tells about the pods of this node, and the interface sources share."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ContainerMeta:
    name: str
    cpu_request_cores: float | None = None
    memory_request_bytes: int | None = None
    restarts: int | None = None  # the kubelet's restartCount, crictl's attempt
    last_oom_killed: bool | None = None  # whether it last ended with reason OOMKilled


@dataclass(frozen=True)
class PodMeta:
    uid: str  # the UID in the pod's cgroup name (a static pod's config hash)
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    workload_kind: str = "Pod"  # Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet, Pod
    workload: str | None = None
    deployment: str | None = None
    qos: str | None = None  # guaranteed, burstable, besteffort
    host_network: bool | None = None
    # Runtime container ID (without the "containerd://" prefix) -> the app container.
    containers: Mapping[str, ContainerMeta] = field(default_factory=dict)
    # Requests by container name, known from the pod spec even before a container starts.
    requests_by_name: Mapping[str, ContainerMeta] = field(default_factory=dict)
    sandbox_ids: frozenset[str] = frozenset()
    cpu_request_cores: float | None = None  # the pod's effective request (kubelet's rule)
    memory_request_bytes: int | None = None
    restarts: int | None = None  # its containers' together
    oom_killed_containers: int | None = None  # of its containers, those last OOM killed


class MetadataSource(Protocol):
    name: str

    def list_pods(self) -> Mapping[str, PodMeta]:
        """The pods of this node by cgroup UID; raises MetadataError when the source fails."""

    def close(self) -> None:
        """Stop background work (a watch) and release connections."""


class MetadataError(Exception):
    """A metadata source could not answer; the message says why."""
