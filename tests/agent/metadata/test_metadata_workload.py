import pytest

from cloudmon.agent.metadata.workload import Owner, controller_of, resolve_workload

HASH = {"pod-template-hash": "7d9c8b6f5d"}


def chain(parents: dict):
    """A parent lookup over a fixed owner graph; owners not in it cannot be looked up."""

    def parent(owner: Owner):
        if owner.uid not in parents:
            raise LookupError(owner.uid)
        return parents[owner.uid]

    return parent


def test_deployment_through_the_chain():
    rs = Owner("ReplicaSet", "web-7d9c8b6f5d", "rs-1")
    walked = resolve_workload(
        "web-7d9c8b6f5d-x2kqp", HASH, rs, chain({"rs-1": Owner("Deployment", "web", "d-1")})
    )
    assert (walked.kind, walked.name, walked.deployment) == ("Deployment", "web", "web")


def test_chain_wins_over_names():
    # A ReplicaSet whose name looks like a Deployment's but which has no owner is bare.
    rs = Owner("ReplicaSet", "web-7d9c8b6f5d", "rs-1")
    walked = resolve_workload(
        "web-7d9c8b6f5d-x2kqp", HASH | {"app": "shop"}, rs, chain({"rs-1": None})
    )
    assert (walked.kind, walked.name, walked.deployment) == ("ReplicaSet", "web-7d9c8b6f5d", "shop")


def test_deployment_by_name_when_the_chain_cannot_be_walked():
    rs = Owner("ReplicaSet", "my-web-7d9c8b6f5d", "rs-1")
    for parent in (None, chain({})):
        walked = resolve_workload("my-web-7d9c8b6f5d-x2kqp", HASH, rs, parent)
        assert (walked.kind, walked.name, walked.deployment) == ("Deployment", "my-web", "my-web")


def test_replicaset_without_the_hash_label_is_bare():
    rs = Owner("ReplicaSet", "cache-abcde", "rs-2")
    walked = resolve_workload("cache-abcde-zzzzz", {"app.kubernetes.io/name": "cache"}, rs)
    assert (walked.kind, walked.name, walked.deployment) == ("ReplicaSet", "cache-abcde", "cache")


def test_replicaset_whose_name_does_not_end_in_the_hash_is_bare():
    rs = Owner("ReplicaSet", "web-other", "rs-3")
    assert resolve_workload("web-other-x", HASH, rs).kind == "ReplicaSet"


def test_cronjob_through_the_chain_and_by_name():
    job = Owner("Job", "nightly-29000000", "job-1")
    by_chain = resolve_workload(
        "nightly-29000000-abcde", {}, job, chain({"job-1": Owner("CronJob", "nightly", "cj-1")})
    )
    by_name = resolve_workload("nightly-29000000-abcde", {}, job)
    assert (by_chain.kind, by_chain.name) == ("CronJob", "nightly")
    assert (by_name.kind, by_name.name) == ("CronJob", "nightly")
    assert by_chain.deployment is None


def test_job_with_a_cronjob_like_name_but_no_owner_is_a_job():
    job = Owner("Job", "backup-28612345", "job-2")
    assert resolve_workload("backup-28612345-q", {}, job, chain({"job-2": None})).kind == "Job"


@pytest.mark.parametrize("name", ["migrate", "migrate-2", "db-seed-1234567"])
def test_plain_jobs_by_name(name):
    walked = resolve_workload(f"{name}-abcde", {}, Owner("Job", name, "j"))
    assert (walked.kind, walked.name) == ("Job", name)


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_direct_owners(kind):
    walked = resolve_workload("db-0", {"app": "db"}, Owner(kind, "db", "u"))
    assert (walked.kind, walked.name, walked.deployment) == (kind, "db", "db")


def test_mirror_pod_owned_by_a_node_is_a_pod():
    walked = resolve_workload("etcd-node-1", {"component": "etcd"}, Owner("Node", "node-1", "n"))
    assert (walked.kind, walked.name, walked.deployment) == ("Pod", "etcd-node-1", None)


def test_unknown_controller_kind_is_a_pod():
    walked = resolve_workload("x-1", {}, Owner("Rollout", "x", "r"))
    assert (walked.kind, walked.name) == ("Pod", "x-1")


def test_bare_pod():
    walked = resolve_workload("debug", {"app": "tools"}, None)
    assert (walked.kind, walked.name, walked.deployment) == ("Pod", "debug", "tools")
    assert resolve_workload("debug", {}, None).deployment is None


def test_app_kubernetes_io_name_before_app():
    labels = {"app": "a", "app.kubernetes.io/name": "b"}
    assert resolve_workload("p", labels, None).deployment == "b"


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        ("web-7d9c8b6f5d-x2kqp", HASH, ("Deployment", "web")),
        ("web-x2kqp", {"pod-template-hash": "zzz"}, ("ReplicaSet", "web")),
        (
            "db-2",
            {"statefulset.kubernetes.io/pod-name": "db-2", "controller-revision-hash": "db-5c8f"},
            ("StatefulSet", "db"),
        ),
        (
            "fluentd-7xk2p",
            {"pod-template-generation": "3", "controller-revision-hash": "6b"},
            ("DaemonSet", "fluentd"),
        ),
        (
            "nightly-29000000-abcde",
            {"batch.kubernetes.io/job-name": "nightly-29000000", "job-name": "nightly-29000000"},
            ("CronJob", "nightly"),
        ),
        ("seed-abcde", {"job-name": "seed"}, ("Job", "seed")),
        (
            "kube-apiserver-node-1",
            {"component": "kube-apiserver"},
            ("Pod", "kube-apiserver-node-1"),
        ),
    ],
)
def test_from_labels_without_owner_references(name, labels, expected):
    walked = resolve_workload(name, labels, None)
    assert (walked.kind, walked.name) == expected


def test_controller_of_prefers_the_controller():
    refs = [
        {"kind": "ConfigMap", "name": "x", "uid": "1"},
        {"kind": "ReplicaSet", "name": "web-1", "uid": "2", "controller": True},
    ]
    assert controller_of(refs) == Owner("ReplicaSet", "web-1", "2")
    assert controller_of(refs[:1]) == Owner("ConfigMap", "x", "1")
    assert controller_of([]) is None
    assert controller_of("junk") is None
    assert controller_of([{"kind": 3}]) is None
