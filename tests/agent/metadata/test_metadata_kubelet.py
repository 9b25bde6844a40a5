import time

import pytest
import trustme
from podjson import pod

from cloudmon.agent.metadata.base import MetadataError
from cloudmon.agent.metadata.kubelet import KubeletSource, default_kubelet_url

STATIC_UID = "8f7e6d5c4b3a29180716f5e4d3c2b1a0"


def test_pods_from_the_kubelet(kube, service_account):
    kube.pods = [
        pod(
            "web-7d9c8b6f5d-x2kqp",
            "pod-a",
            labels={"pod-template-hash": "7d9c8b6f5d"},
            owner=("ReplicaSet", "web-7d9c8b6f5d", "rs-1"),
        ),
        pod(
            "etcd-node-1",
            STATIC_UID,
            namespace="kube-system",
            host_network=True,
            annotations={
                "kubernetes.io/config.hash": STATIC_UID,
                "kubernetes.io/config.source": "file",
            },
        ),
    ]
    pods = KubeletSource(kube.url, service_account_dir=str(service_account)).list_pods()
    assert set(pods) == {"pod-a", STATIC_UID}
    assert (pods["pod-a"].workload_kind, pods["pod-a"].deployment) == ("Deployment", "web")
    assert pods[STATIC_UID].host_network is True
    assert kube.requests == ["/pods"]  # no owner walk
    assert KubeletSource(kube.url + "/", service_account_dir=str(service_account)).list_pods()


def test_unauthorized(kube, service_account):
    kube.token = "other"
    source = KubeletSource(kube.url, service_account_dir=str(service_account))
    with pytest.raises(MetadataError, match="401"):
        source.list_pods()
    (service_account / "token").write_text("other")
    assert source.list_pods() == {}


def test_timeout(silent, service_account):
    source = KubeletSource(silent.url, service_account_dir=str(service_account), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(MetadataError, match="timed out"):
        source.list_pods()
    assert time.monotonic() - started < 3


def test_wrong_ca(kube, service_account, tmp_path):
    other = tmp_path / "other-ca.crt"
    trustme.CA().cert_pem.write_to_path(str(other))
    source = KubeletSource(kube.url, service_account_dir=str(service_account), ca_file=str(other))
    with pytest.raises(MetadataError, match="TLS verification failed"):
        source.list_pods()


def test_missing_token_and_bad_ca_file(kube, service_account, tmp_path):
    (service_account / "token").unlink()
    with pytest.raises(MetadataError, match="no token"):
        KubeletSource(kube.url, service_account_dir=str(service_account)).list_pods()
    (service_account / "token").write_text("token-1")
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate")
    source = KubeletSource(kube.url, service_account_dir=str(service_account), ca_file=str(junk))
    with pytest.raises(MetadataError, match="CA file"):
        source.list_pods()


def test_not_a_pod_list(kube, service_account):
    kube.list_status = 403
    with pytest.raises(MetadataError, match="403"):
        KubeletSource(kube.url, service_account_dir=str(service_account)).list_pods()


def test_default_url(monkeypatch):
    monkeypatch.setenv("NODE_IP", "192.0.2.10")
    assert default_kubelet_url() == "https://192.0.2.10:10250"
    monkeypatch.setenv("NODE_IP", "2001:db8::10")
    assert default_kubelet_url() == "https://[2001:db8::10]:10250"
    monkeypatch.delenv("NODE_IP")
    assert default_kubelet_url() is None


def test_not_https():
    with pytest.raises(MetadataError, match="not an https URL"):
        KubeletSource("http://127.0.0.1:10255")
