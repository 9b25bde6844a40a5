"""Which workload owns a pod: through the owner chain where it can be walked, else by names."""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    kind: str
    name: str
    uid: str | None = None


@dataclass(frozen=True)
class Workload:
    kind: str  # Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet or Pod
    name: str
    deployment: str | None


# Looks up the controller of a ReplicaSet or Job: its Owner, None when it has none; raises
# LookupError when it cannot tell (then the naming rules decide).
ParentLookup = Callable[[Owner], Owner | None]

_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet")
# The CronJob controller names a Job "<cronjob>-<scheduled time in Unix minutes>"
# (pkg/controller/cronjob/utils.go getJobName, getTimeHashInMinutes); today that is 8 digits.
_CRONJOB_JOB = re.compile(r"(.+)-\d{8,}", re.ASCII)
_ORDINAL = re.compile(r"(.+)-\d+", re.ASCII)
_UNKNOWN = Owner("", "")  # the chain could not be walked


def controller_of(owner_references: object) -> Owner | None:
    """The controlling owner from metadata.ownerReferences (else the first owner), or None."""
    if not isinstance(owner_references, list):
        return None
    owners = [ref for ref in owner_references if isinstance(ref, dict)]
    chosen = next((ref for ref in owners if ref.get("controller") is True), None)
    if chosen is None and owners:
        chosen = owners[0]
    if chosen is None:
        return None
    kind, name, uid = chosen.get("kind"), chosen.get("name"), chosen.get("uid")
    if not isinstance(kind, str) or not isinstance(name, str):
        return None
    return Owner(kind, name, uid if isinstance(uid, str) else None)


def resolve_workload(
    pod_name: str,
    labels: Mapping[str, str],
    owner: Owner | None,
    parent: ParentLookup | None = None,
) -> Workload:
    """The pod's workload kind and name, and its Deployment (or app label), per the contract."""
    kind, name = _workload(pod_name, labels, owner, parent)
    deployment = name if kind == "Deployment" else None
    if deployment is None:
        deployment = labels.get("app.kubernetes.io/name") or labels.get("app") or None
    return Workload(kind, name, deployment)


def _workload(
    pod_name: str, labels: Mapping[str, str], owner: Owner | None, parent: ParentLookup | None
) -> tuple[str, str]:
    if owner is None:
        return _from_labels(pod_name, labels)
    if owner.kind == "ReplicaSet":
        walked = _walk(owner, parent)
        if walked is not _UNKNOWN:
            return ("Deployment", walked.name) if _is(walked, "Deployment") else _as_is(owner)
        return _from_replicaset_name(owner.name, labels)
    if owner.kind == "Job":
        walked = _walk(owner, parent)
        if walked is not _UNKNOWN:
            return ("CronJob", walked.name) if _is(walked, "CronJob") else _as_is(owner)
        return _from_job_name(owner.name)
    if owner.kind in _KINDS:
        return _as_is(owner)
    # A mirror pod (owned by its Node) or a controller kind outside the list.
    return "Pod", pod_name


def _walk(owner: Owner, parent: ParentLookup | None) -> Owner | None:
    if parent is None:
        return _UNKNOWN
    try:
        return parent(owner)
    except LookupError:
        return _UNKNOWN


def _is(owner: Owner | None, kind: str) -> bool:
    return owner is not None and owner.kind == kind


def _as_is(owner: Owner) -> tuple[str, str]:
    return owner.kind, owner.name


def _from_replicaset_name(name: str, labels: Mapping[str, str]) -> tuple[str, str]:
    # The Deployment controller names its ReplicaSets "<deployment>-<pod-template-hash>"
    # (pkg/controller/deployment/sync.go) and puts the hash on every pod as a label.
    suffix = f"-{labels.get('pod-template-hash', '')}"
    if len(suffix) > 1 and name.endswith(suffix) and len(name) > len(suffix):
        return "Deployment", name[: -len(suffix)]
    return "ReplicaSet", name


def _from_job_name(name: str) -> tuple[str, str]:
    match = _CRONJOB_JOB.fullmatch(name)
    return ("CronJob", match.group(1)) if match else ("Job", name)


def _from_labels(pod_name: str, labels: Mapping[str, str]) -> tuple[str, str]:
    # Without owner references (crictl), the labels that controllers put on their pods.
    job = labels.get("batch.kubernetes.io/job-name") or labels.get("job-name")
    if job:
        return _from_job_name(job)
    if "pod-template-hash" in labels:
        replicaset, dash, _ = pod_name.rpartition("-")
        if dash:
            return _from_replicaset_name(replicaset, labels)
    if "statefulset.kubernetes.io/pod-name" in labels:
        match = _ORDINAL.fullmatch(pod_name)
        if match:
            return "StatefulSet", match.group(1)
    if "pod-template-generation" in labels:
        daemonset, dash, _ = pod_name.rpartition("-")
        if dash:
            return "DaemonSet", daemonset
    return "Pod", pod_name
