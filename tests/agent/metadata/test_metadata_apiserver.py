import logging
import time

import pytest
from podjson import container, job, pod, replicaset, status_of

from cloudmon.agent.metadata.apiserver import ApiServerSource, in_cluster_url
from cloudmon.agent.metadata.base import MetadataError

RS_POD = pod(
    "web-7d9c8b6f5d-x2kqp",
    "pod-a",
    labels={"app": "web", "pod-template-hash": "7d9c8b6f5d"},
    owner=("ReplicaSet", "web-7d9c8b6f5d", "rs-1"),
    containers=[container("web", "250m", "64Mi")],
    statuses=[status_of("web", "containerd://" + "a" * 64)],
)


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def source_for(kube, service_account):
    made = []

    def make(**options):
        options.setdefault("backoff_seconds", (0.05, 0.2))
        source = ApiServerSource(
            "node-1", service_account_dir=str(service_account), apiserver_url=kube.url, **options
        )
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def event(kind, obj):
    return {"type": kind, "object": obj}


def test_list_then_watch_events(kube, source_for):
    kube.pods = [RS_POD]
    source = source_for()
    assert set(source.list_pods()) == {"pod-a"}
    assert kube.requests[0] == "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1"

    added = pod("db-0", "pod-b", owner=("StatefulSet", "db", "sts-1"), resource_version="101")
    relabelled = RS_POD | {
        "metadata": RS_POD["metadata"]
        | {"labels": {"app": "shop", "pod-template-hash": "7d9c8b6f5d"}, "resourceVersion": "102"}
    }
    kube.watch(event("ADDED", added), event("MODIFIED", relabelled))
    wait_until(
        lambda: (
            "pod-b" in source.list_pods() and source.list_pods()["pod-a"].labels["app"] == "shop"
        )
    )
    assert source.list_pods()["pod-b"].workload_kind == "StatefulSet"

    bookmark = {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "150"}}
    deleted = added | {"metadata": added["metadata"] | {"resourceVersion": "151"}}
    kube.watch(event("BOOKMARK", bookmark), event("DELETED", deleted), "END")
    wait_until(lambda: "pod-b" not in source.list_pods())
    # The next watch goes on from the last resourceVersion, with bookmarks and a timeout.
    wait_until(
        lambda: (
            kube.count(
                "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&watch=true&resourceVersion=151"
            )
            >= 1
        )
    )
    first_watch = next(r for r in kube.requests if "watch=true" in r)
    assert "resourceVersion=100" in first_watch
    assert "allowWatchBookmarks=true" in first_watch and "timeoutSeconds=300" in first_watch
    assert kube.count("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1") >= 2


def test_error_event_410_relists(kube, source_for):
    kube.pods = [RS_POD]
    source = source_for()
    source.list_pods()
    kube.pods = [RS_POD, pod("new-1", "pod-c")]
    kube.resource_version = "500"
    expired = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "too old resource version: 100 (400)",
        "reason": "Expired",
        "code": 410,
    }
    kube.watch(event("ERROR", expired))
    wait_until(lambda: "pod-c" in source.list_pods())
    wait_until(lambda: any("watch=true&resourceVersion=500" in r for r in kube.requests))


def test_http_410_relists(kube, source_for):
    kube.pods = [RS_POD]
    source = source_for()
    source.list_pods()
    kube.pods = [pod("new-1", "pod-c")]
    kube.watch({"http_status": 410})
    wait_until(lambda: set(source.list_pods()) == {"pod-c"})


def test_connection_errors_back_off_and_recover(kube, source_for):
    kube.pods = [RS_POD]
    source = source_for()
    source.list_pods()
    kube.watch({"http_status": 500}, {"http_status": 500})
    wait_until(lambda: kube.watch_steps.empty())
    kube.watch(event("ADDED", pod("late", "pod-d", resource_version="120")))
    wait_until(lambda: "pod-d" in source.list_pods())
    assert "pod-a" in source.list_pods()


def test_owner_chain_is_walked_once_per_owner(kube, source_for):
    second = pod(
        "web-7d9c8b6f5d-abcde",
        "pod-a2",
        labels=RS_POD["metadata"]["labels"],
        owner=("ReplicaSet", "web-7d9c8b6f5d", "rs-1"),
    )
    cron_pod = pod("nightly-29000000-q", "pod-j", owner=("Job", "nightly-29000000", "job-1"))
    # A Job named like a CronJob's, but the chain says nobody owns it.
    lone_job_pod = pod("backup-28612345-q", "pod-k", owner=("Job", "backup-28612345", "job-2"))
    kube.pods = [RS_POD, second, cron_pod, lone_job_pod]
    kube.objects = {
        "/apis/apps/v1/namespaces/shop/replicasets/web-7d9c8b6f5d": replicaset(
            "web-7d9c8b6f5d", "rs-1", "web"
        ),
        "/apis/batch/v1/namespaces/shop/jobs/nightly-29000000": job(
            "nightly-29000000", "job-1", "nightly"
        ),
        "/apis/batch/v1/namespaces/shop/jobs/backup-28612345": job(
            "backup-28612345", "job-2", None
        ),
    }
    pods = source_for().list_pods()
    assert (pods["pod-a"].workload_kind, pods["pod-a"].deployment) == ("Deployment", "web")
    assert pods["pod-a2"].workload == "web"
    assert (pods["pod-j"].workload_kind, pods["pod-j"].workload) == ("CronJob", "nightly")
    assert (pods["pod-k"].workload_kind, pods["pod-k"].workload) == ("Job", "backup-28612345")
    assert kube.count("/apis/apps/v1/namespaces/shop/replicasets/") == 1


def test_owner_of_another_uid_or_denied_falls_back_to_names(kube, source_for):
    kube.pods = [RS_POD]
    # The ReplicaSet was deleted and made again with the same name: not this pod's owner.
    kube.objects = {
        "/apis/apps/v1/namespaces/shop/replicasets/web-7d9c8b6f5d": replicaset(
            "web-7d9c8b6f5d", "rs-other", None
        )
    }
    pods = source_for().list_pods()
    assert (pods["pod-a"].workload_kind, pods["pod-a"].workload) == ("Deployment", "web")
    kube.objects = {}
    pods = source_for().list_pods()  # 404
    assert (pods["pod-a"].workload_kind, pods["pod-a"].workload) == ("Deployment", "web")


def test_rotated_token_is_reread_and_a_401_retried_once(kube, source_for, service_account, caplog):
    kube.pods = [RS_POD]
    kube.token = "token-2"
    source = source_for()
    with caplog.at_level(logging.DEBUG), pytest.raises(MetadataError, match="401"):
        source.list_pods()
    assert kube.count("/api/v1/pods") == 2  # the request and one retry
    # The kubelet rotates the projected token file just as the old token is refused.
    token_file = service_account / "token"
    kube.token = "token-3"
    kube.on_unauthorized = lambda: token_file.write_text("token-3\n")
    assert "pod-a" in source.list_pods()
    assert "token-1" not in caplog.text and "token-2" not in caplog.text


def test_never_listed_raises(kube, source_for):
    kube.list_status = 403
    with pytest.raises(MetadataError, match="403"):
        source_for().list_pods()
    kube.list_status = None
    kube.pods = [{"kind": "not a pod"}]
    assert source_for().list_pods() == {}


def test_server_that_never_answers_times_out(silent, service_account):
    source = ApiServerSource(
        "node-1", service_account_dir=str(service_account), apiserver_url=silent.url, timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(MetadataError, match="timed out"):
        source.list_pods()
    assert time.monotonic() - started < 3
    source.close()


def test_list_answers_from_the_cache_without_network(kube, source_for):
    kube.pods = [RS_POD]
    source = source_for()
    source.list_pods()
    lists = kube.count("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1")
    for _ in range(5):
        assert "pod-a" in source.list_pods()
    assert kube.count("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1") - lists <= 1


def test_in_cluster_url(monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert in_cluster_url() == "https://10.96.0.1:443"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    assert in_cluster_url() == "https://[fd00::1]:443"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(MetadataError):
        in_cluster_url()
