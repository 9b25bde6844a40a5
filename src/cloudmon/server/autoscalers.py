"""The HorizontalPodAutoscalers that right-sizing marks workloads with, read from the API
server (autoscaling/v2) with the server's service account when it runs in a cluster, at most
once every REFRESH seconds in each worker: right-sizing is asked for rarely, and an
autoscaler's spec rarely changes. Its ClusterRole may list HorizontalPodAutoscalers, nothing
else (manifests/monitor-api.yaml)."""

import logging
import os
import threading
import time
from collections.abc import Callable

from cloudmon.agent import paths
from cloudmon.agent.metadata.apiserver import in_cluster_url
from cloudmon.agent.metadata.base import MetadataError
from cloudmon.agent.metadata.http import Client

log = logging.getLogger(__name__)

REFRESH = 60.0  # seconds
PATH = "/apis/autoscaling/v2/horizontalpodautoscalers"
# What an autoscaler without metrics scales on (the API's default).
DEFAULT_METRIC = {"resource": "cpu", "container": None, "type": "Utilization", "value": 80}

# An autoscaler's workload: (namespace, kind, name).
Target = tuple[str, str, str]


def parse_autoscalers(document: object) -> dict[Target, dict]:
    """Per workload it scales, an autoscaler of a HorizontalPodAutoscalerList: its name, its
    replicas' bounds and the resources it scales on (`resource`, the `container` of a
    ContainerResource metric or None for the pod's, the target's `type` and `value`:
    Utilization a percentage of the request, AverageValue a quantity a pod). Items that are
    not autoscalers of a named workload are left out; other metrics (Pods, Object, External)
    are not of a resource."""
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise MetadataError("the HorizontalPodAutoscaler list has no items")
    found = {}
    for item in items:
        metadata, spec = _dict(item, "metadata"), _dict(item, "spec")
        target = _dict(spec, "scaleTargetRef")
        namespace, kind, name = metadata.get("namespace"), target.get("kind"), target.get("name")
        if not all(isinstance(value, str) and value for value in (namespace, kind, name)):
            continue
        metrics = spec.get("metrics")
        resources = [DEFAULT_METRIC] if not metrics else _resources(metrics)
        found[namespace, kind, name] = {
            "name": metadata.get("name"),
            "min_replicas": spec.get("minReplicas", 1),
            "max_replicas": spec.get("maxReplicas"),
            "resources": resources,
        }
    return found


def _resources(metrics: object) -> list[dict]:
    resources = []
    for metric in metrics if isinstance(metrics, list) else []:
        kind = metric.get("type") if isinstance(metric, dict) else None
        if kind not in ("Resource", "ContainerResource"):
            continue
        source = _dict(metric, "resource" if kind == "Resource" else "containerResource")
        target = _dict(source, "target")
        value = target.get("averageUtilization")
        if target.get("type") != "Utilization":
            value = target.get("averageValue")
        resources.append(
            {
                "resource": source.get("name"),
                "container": source.get("container"),
                "type": target.get("type"),
                "value": value,
            }
        )
    return resources


def _dict(value: object, key: str) -> dict:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, dict) else {}


class Autoscalers:
    """The cluster's autoscalers, listed again when REFRESH seconds old."""

    def __init__(self, client: Client, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._found: dict[Target, dict] | None = None
        self._listed = -float("inf")

    @classmethod
    def in_cluster(cls, service_account_dir: str = paths.SERVICE_ACCOUNT_DIR):
        """Those of the cluster the server runs in; None outside one (no API server set in
        its environment, or no service account token mounted)."""
        token = os.path.join(service_account_dir, "token")
        if not os.environ.get("KUBERNETES_SERVICE_HOST") or not os.path.exists(token):
            return None
        ca = os.path.join(service_account_dir, "ca.crt")
        return cls(Client(in_cluster_url(), token_file=token, ca_file=ca, timeout=5.0))

    def lookup(self) -> tuple[dict[Target, dict] | None, str | None]:
        """The autoscalers by workload, and None; or None and why they are not known (the
        last list is kept while the API server cannot be asked)."""
        with self._lock:
            if self._clock() - self._listed >= REFRESH:
                try:
                    self._found = parse_autoscalers(self._client.get_json(PATH))
                    self._listed = self._clock()
                except MetadataError as error:
                    log.warning("cannot list the HorizontalPodAutoscalers: %s", error)
                    if self._found is None:
                        return None, f"the API server did not list them: {error}"
            return self._found, None
