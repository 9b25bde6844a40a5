"""The kubelet's /pods endpoint as a metadata source (no owner walk: names decide workloads)."""

import os

from cloudmon.agent import paths
from cloudmon.agent.metadata.base import PodMeta
from cloudmon.agent.metadata.http import Client
from cloudmon.agent.metadata.podspec import parse_pod_list

KUBELET_PORT = 10250


def default_kubelet_url() -> str | None:
    """https://$NODE_IP:10250, or None when NODE_IP is not set."""
    node_ip = os.environ.get("NODE_IP")
    if not node_ip:
        return None
    host = f"[{node_ip}]" if ":" in node_ip else node_ip
    return f"https://{host}:{KUBELET_PORT}"


class KubeletSource:
    """GET <kubelet>/pods with the service-account token on every list."""

    name = "kubelet"

    def __init__(
        self,
        kubelet_url: str,
        *,
        service_account_dir: str = paths.SERVICE_ACCOUNT_DIR,
        ca_file: str | None = None,
        timeout: float = 5.0,
    ):
        self._client = Client(
            kubelet_url,
            token_file=os.path.join(service_account_dir, "token"),
            ca_file=ca_file or os.path.join(service_account_dir, "ca.crt"),
            timeout=timeout,
        )

    def list_pods(self) -> dict[str, PodMeta]:
        """The kubelet's pods by UID; MetadataError when it does not answer a PodList."""
        return parse_pod_list(self._client.get_json("/pods"))

    def close(self) -> None:
        """Nothing stays open between lists."""
