"""Payload bodies for the server tests."""

T0 = 1_764_100_000  # a bucket start


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pod(uid, name=None, namespace=None, deployment=None, **metrics):
    return {
        "uid": uid,
        "name": name,
        "namespace": namespace,
        "deployment": deployment,
        "workload_kind": "Deployment" if deployment else None,
        "workload": deployment,
        "qos": "burstable",
        "containers": [],
        **metrics,
    }


def container(name, container_id=None, **metrics):
    return {"id": container_id or f"{name}-1", "name": name, **metrics}


def payload(node, timestamp, pods=(), cpu_count=4, **node_metrics):
    return {
        "schema": 1,
        "node": node,
        "timestamp": timestamp,
        "interval": 10.0,
        "node_info": {"cpu_count": cpu_count, "memory_total_bytes": 8_000_000_000},
        "node_metrics": {"pod_count": len(pods), **node_metrics},
        "pods": list(pods),
    }
