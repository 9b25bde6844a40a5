import json
import os
import stat
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudmon.agent.metadata.base import MetadataError
from cloudmon.agent.metadata.crictl import (
    CrictlSource,
    build_pods,
    parse_containers,
    parse_pods,
    parse_sandbox_status,
)

FAKE_CRICTL = str(Path(__file__).with_name("fake_crictl.py"))
WEB_UID = "3f1c2a7e-9b1d-4c55-8e7a-0a1b2c3d4e5f"
AGENT_UID = "5a6b7c8d-1111-2222-3333-444455556666"
SPEC = [
    {
        "uid": WEB_UID,
        "name": "web-7d9c8b6f5d-x2kqp",
        "namespace": "shop",
        "labels": {"app": "web", "pod-template-hash": "7d9c8b6f5d"},
        "sandbox_id": "5" * 64,
        "cpu_shares": 256,
        "containers": [
            {"id": "a" * 64, "name": "web"},
            {"id": "b" * 64, "name": "init-db", "state": "CONTAINER_EXITED"},
        ],
    },
    {
        "uid": AGENT_UID,
        "name": "node-agent-7xk2p",
        "namespace": "monitoring",
        "labels": {"pod-template-generation": "1", "controller-revision-hash": "6b7f"},
        "sandbox_id": "6" * 64,
        "host_network": True,
        "cpu_shares": 2,
        "containers": [{"id": "c" * 64, "name": "agent"}],
    },
]


@pytest.fixture
def spec_file(tmp_path, monkeypatch):
    path = tmp_path / "crictl.json"
    path.write_text(json.dumps(SPEC))
    monkeypatch.setenv("FAKE_CRICTL_SPEC", str(path))
    return path


def script(tmp_path, body: str) -> str:
    path = tmp_path / "crictl"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_fake_crictl_is_executable():
    assert os.access(FAKE_CRICTL, os.X_OK)


def test_pods_from_the_fake_crictl(spec_file):
    pods = CrictlSource(FAKE_CRICTL).list_pods()
    assert set(pods) == {WEB_UID, AGENT_UID}
    web = pods[WEB_UID]
    assert (web.name, web.namespace) == ("web-7d9c8b6f5d-x2kqp", "shop")
    assert web.labels == {"app": "web", "pod-template-hash": "7d9c8b6f5d"}
    assert (web.workload_kind, web.workload, web.deployment) == ("Deployment", "web", "web")
    assert web.sandbox_ids == frozenset({"5" * 64})
    assert {cid: c.name for cid, c in web.containers.items()} == {
        "a" * 64: "web",
        "b" * 64: "init-db",
    }
    assert web.host_network is False
    assert web.cpu_request_cores == 0.25
    assert web.memory_request_bytes is None
    agent = pods[AGENT_UID]
    assert (agent.workload_kind, agent.workload) == ("DaemonSet", "node-agent")
    assert agent.host_network is True
    assert agent.cpu_request_cores == 0.0


def test_sandboxes_are_inspected_once(spec_file, tmp_path):
    log = tmp_path / "calls"
    wrapper = script(tmp_path, f'echo "$1" >> {log}\nexec {FAKE_CRICTL} "$@"')
    source = CrictlSource(wrapper)
    source.list_pods()
    source.list_pods()
    assert log.read_text().split().count("inspectp") == 2  # two sandboxes, each once
    assert log.read_text().split().count("pods") == 2


def test_fake_crictl_outputs_match_crictl_shapes(spec_file):
    import subprocess

    def run(*args):
        return json.loads(
            subprocess.run([FAKE_CRICTL, *args], capture_output=True, check=True).stdout
        )

    sandboxes = run("pods", "-o", "json")["items"]
    assert sandboxes[0]["createdAt"].isdigit()  # int64 as a JSON string
    assert sandboxes[0]["labels"]["io.kubernetes.pod.uid"] == WEB_UID
    assert len(run("ps", "-a", "-o", "json")["containers"]) == 3
    assert len(run("ps", "-o", "json")["containers"]) == 2
    status = run("inspectp", "-o", "json", "6" * 64)
    assert status["status"]["linux"]["namespaces"]["options"]["network"] == "NODE"
    assert parse_pods({"items": sandboxes})[1].labels == SPEC[1]["labels"]
    failed = subprocess.run([FAKE_CRICTL, "inspectp", "-o", "json", "f" * 64], capture_output=True)
    assert failed.returncode == 1 and b"NotFound" in failed.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "echo 'connect: connection refused' >&2; exit 1",
            "exited with 1: connect: connection refused",
        ),
        ("echo 'this is not json'", "not JSON"),
        ("echo '{\"items\": 3}'", "did not print"),
        ("echo '[1, 2]'", "did not print"),
    ],
)
def test_failing_crictl(tmp_path, body, message):
    with pytest.raises(MetadataError, match=message):
        CrictlSource(script(tmp_path, body)).list_pods()


def test_missing_crictl(tmp_path):
    with pytest.raises(MetadataError, match="not found"):
        CrictlSource(str(tmp_path / "no-such-crictl")).list_pods()


def test_hanging_crictl_times_out(tmp_path):
    # The child of the shell keeps the pipes open too: the whole process group must go.
    source = CrictlSource(script(tmp_path, "sleep 30 & sleep 30"), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(MetadataError, match=r"timed out after 0\.5 s"):
        source.list_pods()
    assert time.monotonic() - started < 5


def test_inspectp_failure_leaves_host_network_unknown(spec_file, tmp_path):
    wrapper = script(tmp_path, f'[ "$1" = inspectp ] && exit 1\nexec {FAKE_CRICTL} "$@"')
    pods = CrictlSource(wrapper).list_pods()
    assert pods[WEB_UID].host_network is None
    assert pods[WEB_UID].cpu_request_cores is None


def test_restarted_sandbox_keeps_all_ids_and_uses_the_newest():
    from cloudmon.agent.metadata.crictl import Sandbox, build_pods

    old = Sandbox("old", "u1", "p", "ns", {}, created=1)
    new = Sandbox("new", "u1", "p", "ns", {}, created=2)
    inspected = []
    pods = build_pods([new, old], [], lambda sandbox_id: inspected.append(sandbox_id))
    assert pods["u1"].sandbox_ids == frozenset({"old", "new"})
    assert inspected == ["new"]


@pytest.mark.parametrize(
    ("document", "host_network", "cpu"),
    [
        (
            {"status": {"linux": {"namespaces": {"options": {"network": "POD"}}}}, "info": {}},
            False,
            None,
        ),
        ([{"status": {"linux": {"namespaces": {"options": {"network": "NODE"}}}}}], True, None),
        # CRI-O with a dropped infra container: only a runtime spec in info.
        ({"status": {}, "info": {"runtimeSpec": {}}}, None, None),
        (
            {"status": {}, "info": {"config": {"linux": {"resources": {"cpu_shares": 1024}}}}},
            None,
            1.0,
        ),
    ],
)
def test_parse_sandbox_status(document, host_network, cpu):
    info = parse_sandbox_status(document)
    assert (info.host_network, info.cpu_request_cores) == (host_network, cpu)


def test_parse_sandbox_status_rejects_junk():
    for document in ({}, [], [{}, {}], "x"):
        with pytest.raises(MetadataError):
            parse_sandbox_status(document)


crictl_keys = st.sampled_from(
    [
        "items",
        "containers",
        "id",
        "podSandboxId",
        "metadata",
        "name",
        "uid",
        "namespace",
        "labels",
        "state",
        "status",
        "info",
        "linux",
        "namespaces",
        "options",
        "network",
        "config",
        "resources",
        "cpu_shares",
        "runtimeSpec",
    ]
)
crictl_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["NODE", "POD", "SANDBOX_READY", "CONTAINER_RUNNING", "1700000000"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(crictl_keys, inner, max_size=6),
    max_leaves=40,
)


@settings(max_examples=300)
@given(crictl_like, crictl_like, crictl_like)
def test_arbitrary_crictl_json_gives_pods_or_metadata_error(pods, containers, status):
    try:
        sandboxes = parse_pods(pods)
        listed = parse_containers(containers)
        info = parse_sandbox_status(status)
        result = build_pods(sandboxes, listed, lambda _: info)
    except MetadataError:
        return
    for uid, meta in result.items():
        assert isinstance(uid, str) and uid
        assert meta.cpu_request_cores is None or meta.cpu_request_cores >= 0


def test_restarts_are_the_latest_attempt_of_each_container():
    from cloudmon.agent.metadata.crictl import Container, Sandbox, build_pods

    sandbox = Sandbox("s1", "u1", "p", "ns", {}, created=1)
    containers = [
        Container("app-0", "s1", "u1", "app", attempt=0),  # exited, as `ps -a` lists it
        Container("app-2", "s1", "u1", "app", attempt=2),
        Container("proxy-1", "s1", "u1", "proxy", attempt=1),
    ]
    pods = build_pods([sandbox], containers, lambda _: None)
    assert pods["u1"].restarts == 3
    assert pods["u1"].containers["app-2"].restarts == 2
    assert pods["u1"].oom_killed_containers is None  # crictl does not say why one ended


def test_without_attempts_restarts_are_unknown():
    from cloudmon.agent.metadata.crictl import Container, Sandbox, build_pods

    sandbox = Sandbox("s1", "u1", "p", "ns", {}, created=1)
    pods = build_pods([sandbox], [Container("a", "s1", "u1", "app")], lambda _: None)
    assert pods["u1"].restarts is None
