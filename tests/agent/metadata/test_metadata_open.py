import json
import logging
from pathlib import Path

import pytest
from podjson import pod

from cloudmon.agent.metadata import open_source
from cloudmon.agent.metadata.base import MetadataError

FAKE_CRICTL = str(Path(__file__).with_name("fake_crictl.py"))


@pytest.fixture
def no_cluster(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("NODE_IP", raising=False)


def options(service_account, **extra):
    return {
        "node_name": "node-1",
        "kubelet_url": None,
        "crictl": "/nonexistent/crictl",
        "service_account_dir": str(service_account),
        "timeout": 1.0,
    } | extra


def test_auto_takes_the_apiserver_when_it_answers(kube, service_account, no_cluster, caplog):
    kube.pods = [pod("p", "u1")]
    with caplog.at_level(logging.INFO, logger="cloudmon.agent.metadata"):
        source = open_source("auto", **options(service_account, apiserver_url=kube.url))
    try:
        assert source.name == "apiserver"
        assert "u1" in source.list_pods()
    finally:
        source.close()
    assert any("metadata source: apiserver" in r.getMessage() for r in caplog.records)


def test_auto_falls_to_the_kubelet_then_crictl_then_none(
    kube, service_account, no_cluster, tmp_path, monkeypatch, caplog
):
    kube.pods = [pod("p", "u1")]
    with caplog.at_level(logging.INFO, logger="cloudmon.agent.metadata"):
        source = open_source("auto", **options(service_account, kubelet_url=kube.url))
        assert source.name == "kubelet"
        record = caplog.records[-1].getMessage()
        assert "skipped apiserver: KUBERNETES_SERVICE_HOST is not set" in record

        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps([{"uid": "u2", "name": "p2", "sandbox_id": "s" * 64}]))
        monkeypatch.setenv("FAKE_CRICTL_SPEC", str(spec))
        kube.token = "refused"
        source = open_source(
            "auto", **options(service_account, kubelet_url=kube.url, crictl=FAKE_CRICTL)
        )
        assert source.name == "crictl" and "u2" in source.list_pods()
        assert "kubelet: GET" in caplog.records[-1].getMessage()

        source = open_source("auto", **options(service_account))
        assert source.name == "none" and source.list_pods() == {}
        record = caplog.records[-1].getMessage()
        assert "no kubelet URL" in record and "/nonexistent/crictl not found" in record


def test_explicit_kinds(service_account, no_cluster):
    assert open_source("none", **options(service_account)).list_pods() == {}
    assert open_source("crictl", **options(service_account)).name == "crictl"
    with pytest.raises(MetadataError):
        open_source("apiserver", **options(service_account))
    with pytest.raises(ValueError, match="unknown metadata source"):
        open_source("etcd", **options(service_account))
