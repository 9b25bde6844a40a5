"""v1 Pod objects shaped as the API server and the kubelet serve them (NODE-FORMATS §6)."""


def container(name: str, cpu: str | None = None, memory: str | None = None, **extra) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    spec = {
        "name": name,
        "image": f"registry.example/{name}:1.0",
        "resources": {"requests": requests} if requests else {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    return spec | extra


def status_of(name: str, container_id: str) -> dict:
    return {
        "name": name,
        "ready": True,
        "restartCount": 0,
        "image": f"registry.example/{name}:1.0",
        "imageID": f"registry.example/{name}@sha256:{'ab' * 32}",
        "containerID": container_id,
        "started": True,
        "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}},
    }


def pod(
    name: str,
    uid: str,
    *,
    namespace: str = "shop",
    labels: dict | None = None,
    owner: tuple[str, str, str] | None = None,
    containers: list[dict] | None = None,
    init_containers: list[dict] | None = None,
    statuses: list[dict] | None = None,
    qos: str = "Burstable",
    host_network: bool = False,
    annotations: dict | None = None,
    resource_version: str = "100",
    **spec_extra,
) -> dict:
    metadata = {
        "name": name,
        "namespace": namespace,
        "uid": uid,
        "resourceVersion": resource_version,
        "creationTimestamp": "2025-01-01T00:00:00Z",
        "labels": labels or {},
    }
    if annotations:
        metadata["annotations"] = annotations
    if owner is not None:
        kind, owner_name, owner_uid = owner
        api = {
            "ReplicaSet": "apps/v1",
            "StatefulSet": "apps/v1",
            "DaemonSet": "apps/v1",
            "Job": "batch/v1",
            "Node": "v1",
        }.get(kind, "v1")
        metadata["ownerReferences"] = [
            {
                "apiVersion": api,
                "kind": kind,
                "name": owner_name,
                "uid": owner_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    spec = {
        "nodeName": "node-1",
        "restartPolicy": "Always",
        "serviceAccountName": "default",
        "containers": containers or [container("app")],
    }
    if init_containers:
        spec["initContainers"] = init_containers
    if host_network:
        spec["hostNetwork"] = True  # omitempty: absent when false
    spec.update(spec_extra)
    return {
        "metadata": metadata,
        "spec": spec,
        "status": {
            "phase": "Running",
            "qosClass": qos,
            "podIP": "10.244.1.7",
            "containerStatuses": statuses or [],
        },
    }


def _owned(kind, api, name, uid, owner_kind, owner, namespace, version) -> dict:
    """An object of `kind` made by its controller `owner` (of `owner_kind`), if any."""
    metadata = {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": version}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": api,
                "kind": owner_kind,
                "name": owner,
                "uid": f"uid-{owner}",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {"kind": kind, "apiVersion": api, "metadata": metadata, "spec": {}}


def replicaset(name: str, uid: str, deployment: str | None, namespace: str = "shop") -> dict:
    return _owned("ReplicaSet", "apps/v1", name, uid, "Deployment", deployment, namespace, "7")


def job(name: str, uid: str, cronjob: str | None, namespace: str = "shop") -> dict:
    return _owned("Job", "batch/v1", name, uid, "CronJob", cronjob, namespace, "9")
