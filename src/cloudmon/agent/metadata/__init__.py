"""Metadata sources: what the API server, the kubelet or crictl tell about this node's pods."""

import logging

from cloudmon.agent import paths
from cloudmon.agent.metadata.apiserver import ApiServerSource
from cloudmon.agent.metadata.base import ContainerMeta, MetadataError, MetadataSource, PodMeta
from cloudmon.agent.metadata.cache import MetadataCache
from cloudmon.agent.metadata.crictl import CrictlSource
from cloudmon.agent.metadata.kubelet import KubeletSource, default_kubelet_url
from cloudmon.agent.metadata.none import NoMetadata

__all__ = [
    "ContainerMeta",
    "MetadataCache",
    "MetadataError",
    "MetadataSource",
    "PodMeta",
    "open_source",
]

log = logging.getLogger(__name__)

KINDS = ("apiserver", "kubelet", "crictl", "none", "auto")


def open_source(
    kind: str,
    *,
    node_name: str,
    kubelet_url: str | None,
    crictl: str,
    service_account_dir: str = paths.SERVICE_ACCOUNT_DIR,
    apiserver_url: str | None = None,
    kubelet_ca_file: str | None = None,
    timeout: float = 5.0,
) -> MetadataSource:
    """The source named `kind`; `auto`: the first of apiserver, kubelet, crictl that lists."""
    makers = {
        "apiserver": lambda: ApiServerSource(
            node_name,
            service_account_dir=service_account_dir,
            apiserver_url=apiserver_url,
            timeout=timeout,
        ),
        "kubelet": lambda: KubeletSource(
            _kubelet_url(kubelet_url),
            service_account_dir=service_account_dir,
            ca_file=kubelet_ca_file,
            timeout=timeout,
        ),
        "crictl": lambda: CrictlSource(crictl, timeout=max(timeout, 10.0)),
        "none": NoMetadata,
    }
    if kind in makers:
        return makers[kind]()
    if kind != "auto":
        raise ValueError(f"unknown metadata source {kind!r}; one of {', '.join(KINDS)}")
    skipped = []
    for name in ("apiserver", "kubelet", "crictl"):
        source = None
        try:
            source = makers[name]()
            source.list_pods()
        except MetadataError as error:
            skipped.append(f"{name}: {error}")
            if source is not None:
                source.close()
            continue
        log.info("metadata source: %s%s", name, _skipped(skipped))
        return source
    log.warning("metadata source: none (pods keep only their UIDs)%s", _skipped(skipped))
    return NoMetadata()


def _kubelet_url(kubelet_url: str | None) -> str:
    url = kubelet_url or default_kubelet_url()
    if url is None:
        raise MetadataError("no kubelet URL (--kubelet-url or NODE_IP)")
    return url


def _skipped(reasons: list[str]) -> str:
    return f" (skipped {'; '.join(reasons)})" if reasons else ""
