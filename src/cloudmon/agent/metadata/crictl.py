"""crictl as a metadata source: pod sandboxes, their containers and network mode from the CRI."""

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudmon.agent.metadata.base import ContainerMeta, MetadataError, PodMeta
from cloudmon.agent.metadata.http import decode_json
from cloudmon.agent.metadata.workload import resolve_workload

# Labels the kubelet adds to sandboxes and containers (pkg/kubelet/kuberuntime/labels.go).
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
_KUBELET_LABELS = (POD_NAME, POD_NAMESPACE, POD_UID)
# The kubelet's MilliCPUToShares gives a pod without a CPU request the minimum, 2 shares.
_MIN_SHARES = 2


@dataclass(frozen=True)
class Sandbox:
    id: str
    uid: str
    name: str
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)
    created: int = 0


@dataclass(frozen=True)
class Container:
    id: str
    sandbox_id: str | None
    pod_uid: str | None
    name: str
    attempt: int | None = None  # how many times the kubelet restarted it before this one


@dataclass(frozen=True)
class SandboxInfo:
    host_network: bool | None
    cpu_request_cores: float | None


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _labels(value: object) -> dict[str, str]:
    return {k: v for k, v in _dict(value).items() if isinstance(k, str) and isinstance(v, str)}


def _items(document: object, key: str, command: str) -> list:
    items = document.get(key) if isinstance(document, dict) else None
    if not isinstance(items, list | None) or not isinstance(document, dict):
        raise MetadataError(f"crictl {command} did not print {{{key!r}: [...]}}")
    return [item for item in items or () if isinstance(item, dict)]


def parse_pods(document: object) -> list[Sandbox]:
    """The sandboxes of `crictl pods -o json` (int64 fields are JSON strings there)."""
    sandboxes = []
    for item in _items(document, "items", "pods"):
        metadata, labels = _dict(item.get("metadata")), _labels(item.get("labels"))
        sandbox_id = _str(item.get("id"))
        uid = _str(metadata.get("uid")) or labels.get(POD_UID)
        name = _str(metadata.get("name")) or labels.get(POD_NAME)
        if not sandbox_id or not uid or not name:
            continue
        created = item.get("createdAt")
        sandboxes.append(
            Sandbox(
                id=sandbox_id,
                uid=uid,
                name=name,
                namespace=_str(metadata.get("namespace")) or labels.get(POD_NAMESPACE, ""),
                labels={k: v for k, v in labels.items() if k not in _KUBELET_LABELS},
                created=int(created)
                if isinstance(created, str) and created.isascii() and created.isdigit()
                else 0,
            )
        )
    return sandboxes


def parse_containers(document: object) -> list[Container]:
    """The containers of `crictl ps -a -o json`."""
    containers = []
    for item in _items(document, "containers", "ps"):
        labels = _labels(item.get("labels"))
        container_id = _str(item.get("id"))
        name = labels.get(CONTAINER_NAME) or _str(_dict(item.get("metadata")).get("name"))
        if container_id and name:
            sandbox_id = _str(item.get("podSandboxId"))
            attempt = _dict(item.get("metadata")).get("attempt")
            if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
                attempt = None
            uid = labels.get(POD_UID)
            containers.append(Container(container_id, sandbox_id, uid, name, attempt))
    return containers


def parse_sandbox_status(document: object) -> SandboxInfo:
    """Host network and CPU request of one sandbox from `crictl inspectp -o json <id>`."""
    if isinstance(document, list) and len(document) == 1:
        document = document[0]
    if not isinstance(document, dict) or "status" not in document:
        raise MetadataError("crictl inspectp did not print a sandbox status")
    status, info = _dict(document.get("status")), _dict(document.get("info"))
    options = _dict(_dict(_dict(status.get("linux")).get("namespaces")).get("options"))
    network = options.get("network")
    # containerd's info.config is the CRI PodSandboxConfig in Go's encoding/json (snake_case);
    # the kubelet puts the pod's CPU request there as shares (calculateSandboxResources).
    resources = _dict(_dict(_dict(info.get("config")).get("linux")).get("resources"))
    shares = resources.get("cpu_shares")
    cpu = None
    if isinstance(shares, int) and not isinstance(shares, bool) and shares > 0:
        cpu = 0.0 if shares <= _MIN_SHARES else round(shares / 1024, 3)
    return SandboxInfo(
        host_network=None if not isinstance(network, str) else network == "NODE",
        cpu_request_cores=cpu,
    )


def build_pods(
    sandboxes: list[Sandbox],
    containers: list[Container],
    inspect: Callable[[str], SandboxInfo | None],
) -> dict[str, PodMeta]:
    """PodMeta by pod UID from the sandboxes, containers and inspect(newest sandbox id)."""
    by_uid: dict[str, list[Sandbox]] = {}
    for sandbox in sandboxes:
        by_uid.setdefault(sandbox.uid, []).append(sandbox)
    uid_of_sandbox = {sandbox.id: sandbox.uid for sandbox in sandboxes}
    app: dict[str, dict[str, ContainerMeta]] = {}
    restarts: dict[str, dict[str, int]] = {}  # by pod UID, by container name: the latest attempt
    for container in containers:
        uid = uid_of_sandbox.get(container.sandbox_id or "") or container.pod_uid
        if uid in by_uid:
            app.setdefault(uid, {})[container.id] = ContainerMeta(
                container.name, restarts=container.attempt
            )
            if container.attempt is not None:
                latest = restarts.setdefault(uid, {})
                latest[container.name] = max(latest.get(container.name, 0), container.attempt)
    pods = {}
    for uid, group in by_uid.items():
        newest = max(group, key=lambda sandbox: sandbox.created)
        info = inspect(newest.id) or SandboxInfo(None, None)
        workload = resolve_workload(newest.name, newest.labels, None)
        pods[uid] = PodMeta(
            uid=uid,
            name=newest.name,
            namespace=newest.namespace,
            labels=newest.labels,
            workload_kind=workload.kind,
            workload=workload.name,
            deployment=workload.deployment,
            host_network=info.host_network,
            containers=app.get(uid, {}),
            sandbox_ids=frozenset(sandbox.id for sandbox in group),
            cpu_request_cores=info.cpu_request_cores,
            restarts=sum(restarts[uid].values()) if uid in restarts else None,
        )
    return pods


class CrictlSource:
    """Runs `crictl pods`, `crictl ps -a` and `crictl inspectp` (once per new sandbox)."""

    name = "crictl"

    def __init__(self, crictl: str = "crictl", *, timeout: float = 10.0):
        self._crictl = crictl
        self._timeout = timeout
        self._inspected: dict[str, SandboxInfo] = {}

    def _run(self, *args: str) -> object:
        command = f"{self._crictl} {' '.join(args)}"
        try:
            process = subprocess.Popen(
                [self._crictl, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise MetadataError(f"{self._crictl} not found") from None
        except OSError as error:
            raise MetadataError(f"cannot run {command}: {error}") from None
        try:
            stdout, stderr = process.communicate(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            # The whole session goes, so that no child keeps the pipes open.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise MetadataError(f"{command} timed out after {self._timeout:g} s") from None
        if process.returncode != 0:
            message = stderr.decode("utf-8", "replace").strip()[:300]
            raise MetadataError(f"{command} exited with {process.returncode}: {message}")
        return decode_json(stdout, f"the output of {command}")

    def _inspect(self, sandbox_id: str) -> SandboxInfo | None:
        if sandbox_id not in self._inspected:
            try:
                self._inspected[sandbox_id] = parse_sandbox_status(
                    self._run("inspectp", "-o", "json", sandbox_id)
                )
            except MetadataError:
                return None  # the sandbox may have gone since `crictl pods`; asked again later
        return self._inspected[sandbox_id]

    def list_pods(self) -> dict[str, PodMeta]:
        """The node's pods by UID; MetadataError when crictl fails."""
        sandboxes = parse_pods(self._run("pods", "-o", "json"))
        containers = parse_containers(self._run("ps", "-a", "-o", "json"))
        live = {sandbox.id for sandbox in sandboxes}
        self._inspected = {k: v for k, v in self._inspected.items() if k in live}
        return build_pods(sandboxes, containers, self._inspect)

    def close(self) -> None:
        """Nothing stays open."""
