"""Payloads for the storage tests."""

import json

from cloudmon import payload as wire

T0 = 1_764_100_000
H0 = 1_764_097_200  # an hour's start


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def payloads(*bodies):
    return wire.decode(json.dumps(list(bodies)).encode())


def node_payload(node, timestamp, pods=(), cpu_cores=1.0, cpu_count=4, **node_metrics):
    return {
        "schema": 1,
        "node": node,
        "timestamp": timestamp,
        "interval": 10.0,
        "node_info": {"cpu_count": cpu_count},
        "node_metrics": {"cpu_cores": cpu_cores, "pod_count": len(pods), **node_metrics},
        "pods": [
            {
                "uid": uid,
                "name": uid,
                "namespace": namespace,
                "deployment": "app",
                "cpu_cores": c,
                "containers": [{"id": f"{uid}-1", "name": "app", "cpu_cores": c / 4}],
            }
            for uid, namespace, c in pods
        ],
    }
