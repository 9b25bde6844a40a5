from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from podjson import container, pod, status_of

from cloudmon.agent.metadata.base import MetadataError
from cloudmon.agent.metadata.podspec import container_id, parse_pod, parse_pod_list, pod_requests

CID = "a" * 64


def test_a_deployment_pod():
    item = pod(
        "web-7d9c8b6f5d-x2kqp",
        "3f1c2a7e-9b1d-4c55-8e7a-0a1b2c3d4e5f",
        labels={"app": "web", "pod-template-hash": "7d9c8b6f5d"},
        owner=("ReplicaSet", "web-7d9c8b6f5d", "rs-1"),
        containers=[container("web", "250m", "128Mi"), container("log", "50m")],
        statuses=[status_of("web", f"containerd://{CID}"), status_of("log", "cri-o://" + "b" * 64)],
    )
    api_uid, meta = parse_pod(item)
    assert api_uid == meta.uid == "3f1c2a7e-9b1d-4c55-8e7a-0a1b2c3d4e5f"
    assert (meta.name, meta.namespace, meta.qos) == ("web-7d9c8b6f5d-x2kqp", "shop", "burstable")
    assert (meta.workload_kind, meta.workload, meta.deployment) == ("Deployment", "web", "web")
    assert meta.host_network is False
    assert meta.labels == {"app": "web", "pod-template-hash": "7d9c8b6f5d"}
    assert set(meta.containers) == {CID, "b" * 64}
    assert meta.containers[CID].name == "web"
    assert meta.containers[CID].cpu_request_cores == 0.25
    assert meta.containers[CID].memory_request_bytes == 128 * 2**20
    assert meta.requests_by_name["log"].memory_request_bytes is None
    assert meta.cpu_request_cores == pytest.approx(0.3)
    assert meta.memory_request_bytes == 128 * 2**20
    assert meta.sandbox_ids == frozenset()


def test_best_effort_host_network_pod_has_zero_requests():
    _api_uid, meta = parse_pod(pod("agent-x", "u1", qos="BestEffort", host_network=True))
    assert meta.qos == "besteffort"
    assert meta.host_network is True
    assert meta.cpu_request_cores == 0.0
    assert meta.memory_request_bytes == 0
    assert meta.requests_by_name["app"].cpu_request_cores is None


def test_container_without_an_id_yet_is_not_listed():
    waiting = status_of("app", "") | {"state": {"waiting": {"reason": "ContainerCreating"}}}
    del waiting["containerID"]
    _, meta = parse_pod(pod("p", "u", statuses=[waiting]))
    assert meta.containers == {}
    assert "app" in meta.requests_by_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"containerd://{CID}", CID),
        (f"cri-o://{CID}", CID),
        (f"docker://{CID}", CID),
        (CID, None),
        ("", None),
        (None, None),
    ],
)
def test_container_id(text, expected):
    assert container_id(text) == expected


def test_static_pod_is_keyed_by_its_config_hash_too():
    config_hash = "8f7e6d5c4b3a29180716f5e4d3c2b1a0"
    mirror = pod(
        "etcd-node-1",
        "mirror-uid-1",
        namespace="kube-system",
        owner=("Node", "node-1", "node-uid"),
        annotations={
            "kubernetes.io/config.hash": config_hash,
            "kubernetes.io/config.mirror": config_hash,
            "kubernetes.io/config.source": "file",
        },
        host_network=True,
    )
    pods = parse_pod_list({"kind": "PodList", "items": [mirror]})
    assert set(pods) == {config_hash, "mirror-uid-1"}
    assert pods[config_hash].uid == config_hash
    assert pods[config_hash].workload_kind == "Pod"
    assert pods[config_hash].workload == "etcd-node-1"


# The effective request, worked by hand from k8s.io/component-helpers/resource PodRequests.
def test_init_container_larger_than_the_app_containers():
    spec = {
        "containers": [container("a", "100m", "100Mi"), container("b", "200m", "50Mi")],
        "initContainers": [container("i1", "500m", "10Mi"), container("i2", "50m", "400Mi")],
    }
    assert pod_requests(spec) == (Decimal("0.5"), 400 * 2**20)


def test_sidecars_add_up_and_count_before_later_init_containers():
    spec = {
        "containers": [container("app", "1", "1Gi")],
        "initContainers": [
            container("mesh", "200m", "128Mi", restartPolicy="Always"),
            container("migrate", "1100m", "64Mi"),  # runs beside mesh: 1.3 cores
            container("logs", "100m", restartPolicy="Always"),
        ],
    }
    cpu, memory = pod_requests(spec)
    # App side: 1 + 0.2 + 0.1 = 1.3; init peak: 0.2 + 1.1 = 1.3. Memory: 1Gi + 128Mi vs 192Mi.
    assert (cpu, memory) == (Decimal("1.3"), 1024 * 2**20 + 128 * 2**20)


def test_sidecar_after_an_init_container_does_not_raise_its_peak():
    spec = {
        "containers": [container("app", "100m")],
        "initContainers": [
            container("first", "2"),
            container("mesh", "500m", restartPolicy="Always"),
        ],
    }
    assert pod_requests(spec)[0] == 2


def test_overhead_and_pod_level_requests():
    spec = {
        "containers": [container("app", "100m", "100Mi")],
        "overhead": {"cpu": "250m", "memory": "120Mi"},
    }
    assert pod_requests(spec) == (Decimal("0.35"), 220 * 2**20)
    spec["resources"] = {"requests": {"cpu": "1"}}
    assert pod_requests(spec) == (Decimal("1.25"), 220 * 2**20)


def test_not_a_pod_list():
    for document in ([], "x", None, {"kind": "Status", "code": 403}, {"metadata": {}}):
        with pytest.raises(MetadataError):
            parse_pod_list(document)
    assert parse_pod_list({"kind": "PodList", "items": None}) == {}
    assert parse_pod_list({"items": [{"metadata": {"name": "no-uid"}}, 3, "x"]}) == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)
pod_keys = st.sampled_from(
    [
        "metadata",
        "spec",
        "status",
        "uid",
        "name",
        "namespace",
        "labels",
        "annotations",
        "ownerReferences",
        "containers",
        "initContainers",
        "resources",
        "requests",
        "cpu",
        "memory",
        "overhead",
        "containerStatuses",
        "containerID",
        "qosClass",
        "hostNetwork",
        "restartPolicy",
        "kind",
        "controller",
        "items",
    ]
)
pod_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=12)
    | st.sampled_from(["100m", "1Gi", "Always", "containerd://abc", "ReplicaSet", "u1"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(pod_keys, inner, max_size=6),
    max_leaves=40,
)


@given(st.one_of(json_values, pod_like))
def test_arbitrary_json_gives_pods_or_metadata_error(document):
    try:
        pods = parse_pod_list(document)
    except MetadataError:
        return
    for uid, meta in pods.items():
        assert isinstance(uid, str) and uid
        assert isinstance(meta.name, str)
        assert meta.cpu_request_cores is not None and meta.memory_request_bytes is not None


@given(pod_like)
def test_arbitrary_pod_items(item):
    parsed = parse_pod({"metadata": {"uid": "u", "name": "n"}, "spec": item, "status": item})
    assert parsed is not None and parsed[1].uid == "u"


def test_restarts_and_the_last_oom_kill_of_each_container_and_the_pod():
    killed = status_of("web", f"containerd://{CID}") | {
        "restartCount": 3,
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
    }
    failed = status_of("log", "containerd://" + "b" * 64) | {
        "restartCount": 1,
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
    }
    init = status_of("setup", "containerd://" + "c" * 64) | {"restartCount": 2}
    item = pod(
        "web-0",
        "u1",
        containers=[container("web"), container("log")],
        init_containers=[container("setup")],
        statuses=[killed, failed],
    )
    item["status"]["initContainerStatuses"] = [init]
    _api_uid, meta = parse_pod(item)
    assert (meta.containers[CID].restarts, meta.containers[CID].last_oom_killed) == (3, True)
    log = meta.containers["b" * 64]
    assert (log.restarts, log.last_oom_killed) == (1, False)
    assert (meta.restarts, meta.oom_killed_containers) == (6, 1)


def test_a_garbled_restart_count_is_unknown_and_counts_nothing():
    status = status_of("web", f"containerd://{CID}") | {"restartCount": "3"}
    _api_uid, meta = parse_pod(pod("web-0", "u1", containers=[container("web")], statuses=[status]))
    assert meta.containers[CID].restarts is None
    assert meta.restarts == 0
