"""The agent on this machine's real kernel: pods built in real cgroups, laid out as the
kubelet lays them out (cgroupfs driver), with real processes doing known work."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from fixtures.crictl import FAKE_CRICTL
from fixtures.realnode import Container, Pod, RealNode, why_not_runnable

from cloudmon import payload
from cloudmon.server.app import create_app
from cloudmon.storage.sqlite import SqliteStorage

MIB = 1 << 20

pytestmark = pytest.mark.skipif(why_not_runnable() is not None, reason=str(why_not_runnable()))


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _wait_for(paths: list[Path], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"workers did not get ready: {paths}"
        time.sleep(0.05)


def _agent_once(tmp_path: Path, pods: list[Pod], shares: dict[str, int] | None = None) -> dict:
    """`cloudmon agent --once` on this machine, its names from crictl (fake, listing `pods`,
    their sandboxes' CPU shares by pod name from `shares`, as the kubelet sets them from the
    pod's CPU request)."""
    shares = shares or {}
    spec = tmp_path / "crictl.json"
    spec.write_text(
        json.dumps(
            [
                {
                    "uid": pod.uid,
                    "name": pod.name,
                    "namespace": pod.namespace,
                    "labels": pod.labels,
                    "sandbox_id": pod.sandbox_id,
                    "host_network": pod.netns is None,
                    "containers": [{"id": c.id, "name": c.name} for c in pod.containers],
                }
                | ({"cpu_shares": shares[pod.name]} if pod.name in shares else {})
                for pod in pods
            ]
        )
    )
    agent = subprocess.run(
        [sys.executable, "-m", "cloudmon", "agent", "--once", "--gap", "2", "--output", "-"]
        + ["--metadata", "crictl", "--crictl", str(FAKE_CRICTL), "--node-name", "e2e-node"],
        env={**os.environ, "FAKE_CRICTL_SPEC": str(spec)},
        capture_output=True,
        timeout=60,
        check=True,
    )
    return json.loads(agent.stdout)


@pytest.fixture
def real_node(tmp_path):
    node = RealNode(tmp_path)
    try:
        yield node
    finally:
        node.close()


def test_agent_measures_real_pods(real_node, tmp_path):
    ready = {name: tmp_path / f"{name}.ready" for name in ("holder", "writer", "sender")}
    sent_bytes = 2000 * 1000
    netns = f"cm-pod-{uuid.uuid4().hex[:6]}"
    real_node.add_netns(netns, f"cm-peer-{uuid.uuid4().hex[:6]}")
    data_file = tmp_path / "written.bin"  # 50 MiB written and fsync'd to a real disk
    writer_limits = {}
    if real_node.version == 1:
        # Kernels since 6.x keep v1 blkio statistics only for cgroups that have a throttle
        # rule, so the writer gets one far above anything it could reach.
        device = os.stat(tmp_path).st_dev
        writer_limits["blkio.throttle.write_bps_device"] = (
            f"{os.major(device)}:{os.minor(device)} 100000000000"
        )
        whole_disk = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}")
        if (whole_disk / "partition").exists():
            parent = whole_disk.resolve().parent.name
            major_minor = Path(f"/sys/class/block/{parent}/dev").read_text().strip()
            writer_limits["blkio.throttle.write_bps_device"] = f"{major_minor} 100000000000"

    web = Pod(
        name="web-7d4b9c6f5d-x2x4z",
        namespace="shop",
        qos="burstable",
        labels={"app": "web", "pod-template-hash": "7d4b9c6f5d"},
        netns=netns,
        containers=[
            Container("burner", _python("while True: pass")),
            Container(
                "sender",
                _python(
                    "import socket, signal\n"
                    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                    f"for _ in range(2000): s.sendto(b'x' * 1000, ('10.213.0.2', 9))\n"
                    f"open({str(ready['sender'])!r}, 'w').close()\n"
                    "signal.pause()"
                ),
            ),
        ],
    )
    db = Pod(
        name="db-0",
        namespace="data",
        qos="guaranteed",
        labels={
            "app": "db",
            "controller-revision-hash": "db-6b8f5c7d9",
            "statefulset.kubernetes.io/pod-name": "db-0",
        },
        limits={"cpu.cfs_quota_us": "50000", "cpu.max": "50000 100000"},
        containers=[
            Container(
                "holder",
                _python(
                    "import signal\n"
                    "held = b'\\x01' * (200 << 20)\n"
                    f"open({str(ready['holder'])!r}, 'w').close()\n"
                    "signal.pause()"
                ),
            )
        ],
    )
    backup = Pod(
        name="backup-29000000-q7w2z",
        namespace="batch",
        qos="besteffort",
        labels={"job-name": "backup-29000000", "batch.kubernetes.io/job-name": "backup-29000000"},
        containers=[
            Container(
                "writer",
                _python(
                    "import os, signal\n"
                    f"with open({str(data_file)!r}, 'wb') as f:\n"
                    "    for _ in range(50): f.write(b'w' * (1 << 20))\n"
                    "    f.flush(); os.fsync(f.fileno())\n"
                    f"open({str(ready['writer'])!r}, 'w').close()\n"
                    "signal.pause()"
                ),
                limits=writer_limits,
            )
        ],
    )
    for pod in (web, db, backup):
        real_node.start(pod)
    _wait_for(list(ready.values()))

    payload = _agent_once(tmp_path, [web, db, backup])
    pods = {p["uid"]: p for p in payload["pods"]}
    assert {web.uid, db.uid, backup.uid} <= pods.keys()
    found_web, found_db, found_backup = pods[web.uid], pods[db.uid], pods[backup.uid]

    for pod, found in ((web, found_web), (db, found_db), (backup, found_backup)):
        assert (found["name"], found["namespace"], found["qos"]) == (
            pod.name,
            pod.namespace,
            pod.qos,
        )
        # The sandbox is part of the pod's figures but not one of its containers.
        assert {c["name"]: c["id"] for c in found["containers"]} == {
            c.name: c.id for c in pod.containers
        }
    assert (found_web["deployment"], found_web["workload_kind"], found_web["workload"]) == (
        "web",
        "Deployment",
        "web",
    )
    assert (found_db["workload_kind"], found_db["workload"]) == ("StatefulSet", "db")
    # A Job named <name>-<scheduled minute> is how the CronJob controller names its Jobs.
    assert (found_backup["workload_kind"], found_backup["workload"]) == ("CronJob", "backup")

    containers = {c["name"]: c for p in payload["pods"] for c in p["containers"]}
    assert containers["burner"]["cpu_cores"] == pytest.approx(1.0, abs=0.15)
    # The pod includes the burner (its files are read a moment apart from the burner's).
    assert found_web["cpu_cores"] >= containers["burner"]["cpu_cores"] - 0.02
    assert containers["holder"]["memory_working_set_bytes"] == pytest.approx(200 * MIB, rel=0.10)
    assert found_db["cpu_limit_cores"] == pytest.approx(0.5)
    assert found_web["cpu_limit_cores"] is None
    assert containers["writer"]["disk_write_bytes_total"] >= 50 * MIB
    assert found_backup["disk_write_bytes_total"] >= 50 * MIB
    assert found_web["network_tx_bytes_total"] >= sent_bytes
    assert found_web["network_tx_bps"] is not None
    # db and backup run in the host's network namespace: their traffic is the node's.
    assert found_db["network_tx_bytes_total"] is None
    assert found_backup["network_rx_bytes_total"] is None
    assert payload["node_metrics"]["pod_count"] >= 3
    assert payload["node_info"]["cgroup_version"] == real_node.version


def test_nothing_is_left_behind(real_node):
    pod = Pod("idle-0", "default", "besteffort", {}, [Container("idle", ["sleep", "infinity"])])
    real_node.start(pod)
    made = list(real_node.cgroups)
    real_node.close()
    assert not [p for p in made if p.exists()]


def _oom_kills() -> int:
    with open("/proc/vmstat") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("oom_kill "))


def test_throttling_oom_kills_and_memory_by_kind_on_the_real_kernel(real_node, tmp_path):
    ready = tmp_path / "holder.ready"
    cached = tmp_path / "cached.ready"
    allocate = _python("held = b'\\x01' * (200 << 20)")  # more than either limit below
    limit_48 = {"memory.limit_in_bytes": str(48 * MIB), "memory.max": str(48 * MIB)}
    limit_32 = {"memory.limit_in_bytes": str(32 * MIB), "memory.max": str(32 * MIB)}
    # Killed for its container's limit, and for its pod's: which counters move where differs
    # between v1 and v2 (README: OOM kills); the agent must answer the same on both.
    at_container = Pod(
        "cache-0",
        "shop",
        "burstable",
        {},
        [Container("victim", allocate, limits=limit_32), Container("idle", ["sleep", "infinity"])],
    )
    at_pod = Pod(
        "cache-1", "shop", "burstable", {}, [Container("grower", allocate)], limits=limit_48
    )
    quota = {"cpu.cfs_quota_us": "20000", "cpu.max": "20000 100000"}  # a fifth of a core
    busy = Pod(
        "busy-0",
        "shop",
        "burstable",
        {},
        [
            Container("burner", _python("while True: pass"), limits=quota),
            Container(
                "holder",
                _python(
                    "import signal\n"
                    "held = bytearray(b'\\x01' * (100 << 20))\n"
                    f"open({str(ready)!r}, 'w').close()\n"
                    "signal.pause()"
                ),
            ),
            Container(
                "cacher",
                _python(
                    "import signal\n"
                    f"with open({str(tmp_path / 'cached.bin')!r}, 'wb') as f:\n"
                    "    for _ in range(40): f.write(b'c' * (1 << 20))\n"
                    f"open({str(cached)!r}, 'w').close()\n"
                    "signal.pause()"
                ),
            ),
        ],
    )
    # Two busy loops on one CPU: each waits for it about half the time, so that some of the
    # pod's tasks are stalled on CPU nearly all the time.
    contend = _python("import os\nos.sched_setaffinity(0, {0})\nwhile True: pass")
    crowded = Pod(
        "crowded-0",
        "shop",
        "besteffort",
        {},
        [Container("first", contend), Container("second", contend)],
    )
    node_kills = _oom_kills()
    for pod in (at_container, at_pod, busy, crowded):
        real_node.start(pod)
    killed = [p for p in real_node.processes if p.args[-1] == allocate[-1]]
    assert len(killed) == 2
    for process in killed:
        assert process.wait(timeout=60) == -9  # SIGKILL, from the OOM killer
    _wait_for([ready, cached])

    payload = _agent_once(tmp_path, [at_container, at_pod, busy, crowded])
    pods = {p["uid"]: p for p in payload["pods"]}
    containers = {c["name"]: c for p in payload["pods"] for c in p["containers"]}

    assert containers["victim"]["memory_oom_kills_total"] == 1
    assert containers["idle"]["memory_oom_kills_total"] == 0
    assert pods[at_container.uid]["memory_oom_kills_total"] == 1
    assert containers["grower"]["memory_oom_kills_total"] == 1
    assert pods[at_pod.uid]["memory_oom_kills_total"] == 1
    assert payload["node_metrics"]["memory_oom_kills_total"] >= node_kills + 2

    # A busy loop held to a fifth of a core runs out of its quota in nearly every period.
    burner = containers["burner"]
    assert burner["cpu_periods_total"] > 0
    assert burner["cpu_throttled_percent"] > 80
    assert burner["cpu_throttled_periods_total"] <= burner["cpu_periods_total"]
    assert containers["holder"]["cpu_periods_total"] == 0  # no quota: no periods
    assert containers["holder"]["cpu_throttled_percent"] is None

    holder = containers["holder"]
    assert holder["memory_anon_bytes"] == pytest.approx(100 * MIB, rel=0.15)
    assert holder["memory_anon_bytes"] <= holder["memory_working_set_bytes"]
    assert pods[busy.uid]["memory_anon_bytes"] >= holder["memory_anon_bytes"]
    # Pressure: from the v2 tree, on a hybrid host from its unified hierarchy.
    has_v2_tree = real_node.version == 2 or os.path.exists("/sys/fs/cgroup/unified/cgroup.procs")
    if has_v2_tree and os.path.exists("/proc/pressure/cpu"):
        assert pods[crowded.uid]["cpu_pressure_some_ratio"] > 0.3
        assert pods[crowded.uid]["cpu_pressure_some_seconds_total"] > 0
        assert pods[at_pod.uid]["memory_pressure_some_seconds_total"] is not None
        assert payload["node_metrics"]["cpu_pressure_some_ratio"] is not None
    else:
        assert pods[crowded.uid]["cpu_pressure_some_seconds_total"] is None

    # The page cache of what the cacher wrote is charged to it, as file memory, not anon.
    assert containers["cacher"]["memory_file_bytes"] >= 30 * MIB
    assert containers["cacher"]["memory_anon_bytes"] < 30 * MIB


def test_a_burner_past_its_request_is_under_provisioned_and_throttled(real_node, tmp_path):
    """Right-sizing from what the agent measured: a busy loop that asks 100m of CPU (its
    sandbox's shares: 102) and is held to 500m (its CFS quota) uses its limit, five times its
    request, and is throttled in most periods. The agent's samples are stored 10 s apart in an
    hour that is over, as a spool drains them, so that the upkeep rolls the hour up."""
    quota = {"cpu.cfs_quota_us": "50000", "cpu.max": "50000 100000"}
    burner = Pod(
        "burner-0",
        "lab",
        "burstable",
        {},
        [Container("burner", _python("while True: pass"), limits=quota)],
    )
    real_node.start(burner)
    samples = [_agent_once(tmp_path, [burner], {"burner-0": 102}) for _ in range(6)]
    hour = (time.time() // 3600 - 2) * 3600
    store = SqliteStorage(tmp_path / "store.db")
    for at, sample in enumerate(samples):
        sample.pop("sent_at", None)
        store.write(
            payload.decode(json.dumps([sample | {"timestamp": hour + 10 * at + 1}]).encode())
        )
    store.roll_up()
    client = create_app({"CLOUDMON_STORAGE": store}).test_client()
    answer = client.get("/api/rightsize?window=1d&min_points=1").get_json()
    (item,) = [item for item in answer["items"] if item["namespace"] == "lab"]
    assert (item["workload_kind"], item["workload"]) == ("Pod", "burner-0")
    (container,) = item["containers"]
    assert container["cpu"]["request"] == 0.1  # the pod's, its only container's
    assert container["cpu"]["limit"] == 0.5
    assert container["cpu"]["p95"] == pytest.approx(0.5, abs=0.08)
    assert container["recommendation"]["cpu_request_cores"] == pytest.approx(0.5, abs=0.08)
    findings = {finding["finding"]: finding for finding in container["findings"]}
    assert findings["under_provisioned"]["resource"] == "cpu"
    assert findings["under_provisioned"]["cpu_cores"] == pytest.approx(-0.4, abs=0.08)
    assert findings["throttled"]["share"] > 0.5
    store.close()
