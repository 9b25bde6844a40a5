"""A v1 Pod as the API server and the kubelet serve it -> PodMeta."""

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import ROUND_UP, Decimal

from cloudmon.agent.metadata.base import ContainerMeta, MetadataError, PodMeta
from cloudmon.agent.metadata.quantity import parse_quantity
from cloudmon.agent.metadata.workload import Owner, controller_of, resolve_workload

# A static pod's cgroup carries the hash of its manifest; its mirror pod in the API server has
# another metadata.uid and these annotations (pkg/kubelet/types/pod_update.go).
_CONFIG_HASH_KEYS = ("kubernetes.io/config.mirror", "kubernetes.io/config.hash")
# Looks up the controller of a ReplicaSet or Job in a namespace (see workload.ParentLookup).
ParentLookup = Callable[[str, Owner], Owner | None]
_CONTAINER_ID = re.compile(r"[A-Za-z0-9.+_-]+://(.+)")


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _str_map(value: object) -> dict[str, str]:
    return {k: v for k, v in _dict(value).items() if isinstance(k, str) and isinstance(v, str)}


def container_id(text: object) -> str | None:
    """The runtime's container ID from "containerd://<id>" (also cri-o://, docker://)."""
    if not isinstance(text, str):
        return None
    match = _CONTAINER_ID.fullmatch(text)
    return match.group(1) if match else None


def _requests(container: dict) -> tuple[Decimal | None, Decimal | None]:
    requests = _dict(_dict(container.get("resources")).get("requests"))
    return parse_quantity(requests.get("cpu")), parse_quantity(requests.get("memory"))


def _container_meta(name: str, cpu: Decimal | None, memory: Decimal | None) -> ContainerMeta:
    return ContainerMeta(
        name=name,
        cpu_request_cores=None if cpu is None else float(cpu),
        memory_request_bytes=None if memory is None else _bytes(memory),
    )


def _bytes(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_UP))


def pod_requests(spec: dict) -> tuple[Decimal, Decimal]:
    """The pod's effective (cores, bytes) request, exact, as the kubelet computes it."""
    # k8s.io/component-helpers/resource PodRequests: app containers and sidecars (init
    # containers with restartPolicy Always) add up; each other init container needs its own
    # request plus the sidecars started before it; the pod takes the larger of the two; a
    # pod-level request replaces the containers' sum; spec.overhead is added on top.
    total = [Decimal(0), Decimal(0)]
    for container in _list(spec.get("containers")):
        for i, value in enumerate(_requests(_dict(container))):
            total[i] += value or 0
    sidecars = [Decimal(0), Decimal(0)]
    init_peak = [Decimal(0), Decimal(0)]
    for container in _list(spec.get("initContainers")):
        container = _dict(container)
        requests = _requests(container)
        sidecar = container.get("restartPolicy") == "Always"
        for i, value in enumerate(requests):
            if sidecar:
                total[i] += value or 0
                sidecars[i] += value or 0
                need = sidecars[i]
            else:
                need = (value or 0) + sidecars[i]
            init_peak[i] = max(init_peak[i], need)
    result = [max(total[i], init_peak[i]) for i in range(2)]
    pod_level = _dict(_dict(spec.get("resources")).get("requests"))
    overhead = _dict(spec.get("overhead"))
    for i, key in enumerate(("cpu", "memory")):
        if (value := parse_quantity(pod_level.get(key))) is not None:
            result[i] = value
        result[i] += parse_quantity(overhead.get(key)) or 0
    return result[0], result[1]


def parse_pod(item: object, parent: ParentLookup | None = None) -> tuple[str, PodMeta] | None:
    """(metadata.uid, PodMeta keyed by its cgroup UID) of one v1 Pod; None if it has no UID."""
    item = _dict(item)
    metadata, spec, status = (_dict(item.get(k)) for k in ("metadata", "spec", "status"))
    api_uid, name = metadata.get("uid"), metadata.get("name")
    if not isinstance(api_uid, str) or not api_uid or not isinstance(name, str):
        return None
    namespace = metadata.get("namespace")
    labels = _str_map(metadata.get("labels"))
    annotations = _str_map(metadata.get("annotations"))
    cgroup_uid = next((annotations[k] for k in _CONFIG_HASH_KEYS if annotations.get(k)), api_uid)
    namespace = namespace if isinstance(namespace, str) else ""
    in_namespace = None if parent is None else (lambda owner: parent(namespace, owner))
    owner = controller_of(metadata.get("ownerReferences"))
    workload = resolve_workload(name, labels, owner, in_namespace)
    requests_by_name = {}
    for container in _list(spec.get("initContainers")) + _list(spec.get("containers")):
        container = _dict(container)
        if isinstance(cname := container.get("name"), str):
            requests_by_name[cname] = _container_meta(cname, *_requests(container))
    containers = {}
    restarts = oom_killed = 0
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for entry in _list(status.get(key)):
            entry = _dict(entry)
            count, last_oom = _restarts(entry), _last_oom_killed(entry)
            restarts += count or 0
            oom_killed += last_oom
            cid, cname = container_id(entry.get("containerID")), entry.get("name")
            if cid and isinstance(cname, str):
                found = requests_by_name.get(cname, ContainerMeta(cname))
                containers[cid] = replace(found, restarts=count, last_oom_killed=last_oom)
    cpu, memory = pod_requests(spec)
    qos = status.get("qosClass")
    return api_uid, PodMeta(
        uid=cgroup_uid,
        name=name,
        namespace=namespace,
        labels=labels,
        workload_kind=workload.kind,
        workload=workload.name,
        deployment=workload.deployment,
        qos=qos.lower() if isinstance(qos, str) and qos else None,
        host_network=spec.get("hostNetwork") is True,
        containers=containers,
        requests_by_name=requests_by_name,
        cpu_request_cores=float(cpu),
        memory_request_bytes=_bytes(memory),
        restarts=restarts,
        oom_killed_containers=oom_killed,
    )


def _restarts(status: dict) -> int | None:
    """A container status's restartCount."""
    count = status.get("restartCount")
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def _last_oom_killed(status: dict) -> bool:
    """Whether a container status says it last ended killed for want of memory."""
    terminated = _dict(_dict(status.get("lastState")).get("terminated"))
    return terminated.get("reason") == "OOMKilled"


def index_pods(pods: Iterable[tuple[str, PodMeta]]) -> dict[str, PodMeta]:
    """Pods by cgroup UID, a static pod also under its mirror pod's metadata.uid."""
    index = {}
    for api_uid, meta in pods:
        index[api_uid] = meta
        index[meta.uid] = meta
    return index


def pod_list_items(document: object) -> list:
    """The items of a v1 PodList; raises MetadataError when it is not a PodList."""
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("items", ()), list | None)
        or document.get("kind", "PodList") != "PodList"
        or ("items" not in document and "kind" not in document)
    ):
        raise MetadataError(f"not a PodList: {str(document)[:100]!r}")
    return document.get("items") or []


def parse_pod_list(document: object, parent: ParentLookup | None = None) -> dict[str, PodMeta]:
    """The pods of a v1 PodList by UID; raises MetadataError when it is not a PodList."""
    parsed = (parse_pod(item, parent) for item in pod_list_items(document))
    return index_pods(pod for pod in parsed if pod is not None)
