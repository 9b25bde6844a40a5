"""Pods and their containers, found from the kubelet's cgroup directory names alone."""

import os
import re
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ContainerCgroup:
    id: str
    runtime: str  # "containerd" | "crio" | "docker" | "unknown"
    path: str  # relative to the hierarchy root, starting with "/"


@dataclass(frozen=True, slots=True)
class PodCgroup:
    uid: str
    qos: str  # "guaranteed" | "burstable" | "besteffort"
    path: str  # relative to the hierarchy root, starting with "/"
    containers: tuple[ContainerCgroup, ...]


# The kubelet's node-allocatable root: "kubepods" (cgroupfs), "kubepods.slice" or, with a
# --cgroup-root such as kind's /kubelet, "kubelet-kubepods.slice" (systemd).
_KUBEPODS = re.compile(r"^(kubepods|kubepods\.slice|.+-kubepods\.slice)$")
# A pod UID is a UUID, or the 32-hex md5 of a static pod's manifest (kubelet
# pkg/kubelet/config/common.go); the systemd driver writes its dashes as underscores.
_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32}"
_POD = re.compile(rf"^(?:pod({_UID})|.+-pod({_UID})\.slice)$")
# Container scopes: runc's systemd unit "<prefix>-<id>.scope" (cri-containerd, crio,
# docker) or the cgroupfs "<id>" (containerd, cri-dockerd) and "crio-<id>" (CRI-O).
# conmon's "crio-conmon-<id>" does not match: "conmon-" is not hex.
_CONTAINER = re.compile(
    r"^(?:(cri-containerd|crio|docker)-([0-9a-f]{64})\.scope|(crio-)?([0-9a-f]{64}))$"
)
_RUNTIMES = {"cri-containerd": "containerd", "crio": "crio", "docker": "docker"}
_QOS = {"burstable": "burstable", "besteffort": "besteffort"}

# kind and other --cgroup-root setups put kubepods two or three levels down.
MAX_SEARCH_DEPTH = 3


def _subdirectories(path: str) -> list[os.DirEntry]:
    with os.scandir(path) as entries:
        return [e for e in entries if e.is_dir(follow_symlinks=False)]


def find_kubepods(hierarchy_root: str, max_depth: int = MAX_SEARCH_DEPTH) -> list[str]:
    """Paths (from the hierarchy root) of every kubepods directory at most max_depth down."""
    found = []
    queue = deque([("", 0)])
    while queue:
        relative, depth = queue.popleft()
        try:
            children = _subdirectories(hierarchy_root + relative)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for child in children:
            path = f"{relative}/{child.name}"
            if _KUBEPODS.match(child.name):
                found.append(path)
            elif depth + 1 < max_depth and not child.name.endswith(".scope"):
                queue.append((path, depth + 1))
    return found


def _qos_of(name: str) -> str | None:
    """'burstable' for "burstable" and "<prefix>-burstable.slice", likewise besteffort."""
    base = name.removesuffix(".slice").rpartition("-")[2]
    return _QOS.get(base)


def _containers(hierarchy_root: str, pod_path: str) -> tuple[ContainerCgroup, ...]:
    containers = []
    with os.scandir(hierarchy_root + pod_path) as entries:
        # Matched by name first: most entries of a cgroup directory are its control files,
        # whose names are shorter than a 64-hex container ID.
        matches = [
            (entry, match)
            for entry in entries
            if len(entry.name) >= 64
            and (match := _CONTAINER.match(entry.name))
            and entry.is_dir(follow_symlinks=False)
        ]
    for entry, match in matches:
        prefix, scoped_id, crio, bare_id = match.groups()
        if scoped_id:
            runtime, container_id = _RUNTIMES[prefix], scoped_id
        else:
            # A bare 64-hex directory is containerd or cri-dockerd: the name cannot tell.
            runtime, container_id = ("crio" if crio else "unknown"), bare_id
        containers.append(ContainerCgroup(container_id, runtime, f"{pod_path}/{entry.name}"))
    return tuple(containers)


def _pods_in(hierarchy_root: str, parent: str, qos: str, pods: list[PodCgroup]) -> None:
    try:
        children = _subdirectories(hierarchy_root + parent)
    except (FileNotFoundError, NotADirectoryError):
        return
    for child in children:
        match = _POD.match(child.name)
        if match is None:
            if qos == "guaranteed" and (child_qos := _qos_of(child.name)):
                _pods_in(hierarchy_root, f"{parent}/{child.name}", child_qos, pods)
            continue
        uid = (match.group(1) or match.group(2)).replace("_", "-")
        path = f"{parent}/{child.name}"
        try:
            containers = _containers(hierarchy_root, path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        pods.append(PodCgroup(uid, qos, path, containers))


def find_pods(hierarchy_root: str, kubepods: list[str] | None = None) -> list[PodCgroup]:
    """Every pod cgroup under the kubepods directories (searched for when not given)."""
    if kubepods is None:
        kubepods = find_kubepods(hierarchy_root)
    pods: list[PodCgroup] = []
    for path in kubepods:
        # Guaranteed pods sit directly in kubepods, the other classes one level down.
        _pods_in(hierarchy_root, path, "guaranteed", pods)
    return pods
