"""The images on a node of real containerd (`fixtures.crinode`): the server pod made from the
Deployment's template in manifests/monitor-api.yaml, the agent pod from the DaemonSet's in
manifests/monitor.yaml, sending to the server over the pod network, measuring pods made
through the CRI as the kubelet makes them; their figures, as the server's API gives them,
against the pods' own cgroup counters over the same interval."""

import json
import sys
import time
from pathlib import Path

import pytest
import trustme
from agent.metadata import podjson
from cri_api.v1 import api_pb2 as cri
from fixtures import containerd, crinode
from fixtures.realnode import Pod

KUBESERVER = Path(__file__).resolve().parents[1] / "agent" / "metadata" / "kubeserver.py"

MIB = 1 << 20
IMAGE = "localhost/cloudmon/monitor:0.1.0"
# What the fixture cannot honour of the templates, and does instead:
# - CLOUDMON_SERVER names the Service (cloudmon-server.cloudmon.svc): no cluster DNS here, so
#   the agent is given the server pod's address;
# - the agent samples every 2 s (10 s as deployed), so that the test takes seconds;
# - the kubelet's probes are run as it runs them: an HTTP GET of the server pod's address
#   from the node, `cloudmon health` executed in the agent's container;
# - the API server the agent asks for names, namespaces and workloads is a stand-in on the
#   node (tests/agent/metadata/kubeserver.py, over TLS), that knows the workload pods.
AGENT_ARGS = ["--interval", "2"]

pytestmark = pytest.mark.skipif(
    bool(crinode.why_not_runnable() or containerd.why_no_engine()),
    reason=str(crinode.why_not_runnable() or containerd.why_no_engine()),
)


def cpu_seconds(node: crinode.CriNode, pod: Pod) -> float:
    """The pod's CPU time, from its own cgroup."""
    (directory,) = [
        d for d in node.cgroups.hierarchies() if d.name in ("cpuacct", "cpu,cpuacct")
    ] or [node.cgroups.hierarchies()[0]]
    path = directory / node.cgroups.pod_path(pod).lstrip("/")
    if (path / "cpuacct.usage").exists():
        return int((path / "cpuacct.usage").read_text()) / 1e9
    usage = dict(line.split() for line in (path / "cpu.stat").read_text().splitlines())
    return int(usage["usage_usec"]) / 1e6


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("images")
    containerd.build_images(out)
    return out


@pytest.fixture
def node(images, tmp_path):
    made = crinode.CriNode(tmp_path / "node")
    try:
        assert made.containerd is not None
        containerd.import_images(made.containerd, images)
        yield made
    finally:
        made.close()


def stand_in_api_server(node: crinode.CriNode, served: dict, directory: Path) -> Path:
    """The API server's stand-in serving `served` on the node, over TLS; the service-account
    directory (token, ca.crt, namespace) a pod is given to reach it."""
    authority = trustme.CA()
    certificate = directory / "apiserver.pem"
    authority.issue_cert(crinode.API_SERVER[0]).private_key_and_cert_chain_pem.write_to_path(
        str(certificate)
    )
    objects = directory / "apiserver.json"
    objects.write_text(json.dumps(served))
    host, port = crinode.API_SERVER
    node.serve(sys.executable, str(KUBESERVER), str(objects), str(certificate), host, str(port))
    account = directory / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("token-1")
    authority.cert_pem.write_to_path(str(account / "ca.crt"))
    (account / "namespace").write_text("cloudmon")
    for path in (account, *account.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return account


def get_json(node: crinode.CriNode, url: str):
    """A GET from the node's network, as the kubelet's probes and a pod would make it."""
    program = (
        "import sys, urllib.request; "
        f"print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
    )
    answered = node.in_network("python3", "-c", program)
    return json.loads(answered.stdout) if answered.returncode == 0 else None


def test_the_agent_sends_what_it_measures_to_the_server_over_the_pod_network(node, tmp_path):
    server_template = crinode.manifest_template("monitor-api.yaml", "Deployment")
    server, containers, namespaces = crinode.from_template(
        node, server_template, tmp_path / "server", env={}, args=[]
    )
    sandbox, _ = node.run_pod(server, containers, **namespaces)
    address = f"http://{node.address(sandbox)}:8080"
    deadline = time.monotonic() + 60
    while get_json(node, f"{address}/healthz") is None:  # the startup probe
        assert time.monotonic() < deadline, "\n".join(node.output(server, "server.log"))[-3000:]
        time.sleep(1)

    # A burner held to half a core and a holder of 64 MiB, each in a burstable pod whose
    # cgroup the kubelet made with its limits.
    quota = {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000", "cpu.max": "50000 100000"}
    burner = Pod("burner-5d8f9c-x2kqp", "shop", "burstable", {"app": "burner"}, [], limits=quota)
    holder = Pod("holder-0", "shop", "burstable", {"app": "holder"}, [], limits={})
    holding = f"import time; held = b'x' * {64 * MIB}; time.sleep(3600)"
    served = {"pods": [], "objects": {}}
    for pod, program, owner in [
        (burner, "while True: pass", ("ReplicaSet", "burner-5d8f9c", "rs-1")),
        (holder, holding, ("StatefulSet", "holder", "sts-1")),
    ]:
        name = pod.name.split("-")[0]
        config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=name),
            image=cri.ImageSpec(image=IMAGE),
            command=["python", "-c", program],
            log_path=f"{name}.log",
        )
        _, made = node.run_pod(pod, [config])
        status = podjson.status_of(name, f"containerd://{made[name]}")
        served["pods"].append(
            podjson.pod(pod.name, pod.uid, labels=pod.labels, owner=owner, statuses=[status])
        )
    replicaset = podjson.replicaset("burner-5d8f9c", "rs-1", "burner")
    served["objects"]["/apis/apps/v1/namespaces/shop/replicasets/burner-5d8f9c"] = replicaset
    account = stand_in_api_server(node, served, tmp_path)

    agent_template = crinode.manifest_template("monitor.yaml", "DaemonSet")
    agent, containers, namespaces = crinode.from_template(
        node,
        agent_template,
        tmp_path / "agent",
        {"CLOUDMON_SERVER": address},
        AGENT_ARGS,
        service_account=account,
    )
    _, started = node.run_pod(agent, containers, **namespaces)

    def pods() -> dict:
        found = get_json(node, f"{address}/api/pods") or {"items": []}
        return {item["uid"]: item for item in found["items"]}

    deadline = time.monotonic() + 60
    while not {burner.uid, holder.uid, agent.uid, server.uid} <= set(pods()):
        assert time.monotonic() < deadline, "\n".join(node.output(agent, "agent.log"))[-3000:]
        time.sleep(1)
    before = cpu_seconds(node, burner)
    time.sleep(4)
    after = cpu_seconds(node, burner)
    found = pods()
    burned = found[burner.uid]["metrics"]["cpu_cores"]
    held = found[holder.uid]["metrics"]["memory_working_set_bytes"]
    working_set = {
        pod.name: found[pod.uid]["metrics"]["memory_working_set_bytes"] / MIB
        for pod in (holder, agent, server)
    }
    print(f"burner {burned:.3f} cores (its cgroup: {(after - before) / 4:.3f}); MiB {working_set}")
    assert burned == pytest.approx((after - before) / 4, rel=0.1)
    assert burned <= 0.55  # its pod's quota holds it: half a core
    assert held == pytest.approx(64 * MIB, rel=0.3)
    assert found[burner.uid]["node"] == node.name
    # Names, namespaces and workloads from the API server, as the agent's default source finds
    # them; the QoS class, the containers (not the sandbox).
    identity = ("name", "namespace", "deployment", "workload_kind")
    assert [found[burner.uid][key] for key in identity] == [
        *(burner.name, "shop", "burner", "Deployment")
    ]
    assert [found[holder.uid][key] for key in identity] == [
        *(holder.name, "shop", "holder", "StatefulSet")  # its deployment: its app label
    ]
    assert found[burner.uid]["info"]["qos"] == found[holder.uid]["info"]["qos"] == "burstable"
    containers = get_json(node, f"{address}/api/pods/shop/{burner.name}/containers")
    assert [container["name"] for container in containers["items"]] == ["burner"]  # no pause
    # The limits the templates set, as the agent reads them from the pods' cgroups.
    assert found[agent.uid]["metrics"]["cpu_limit_cores"] == pytest.approx(0.2)
    # The liveness probe of the DaemonSet, run in the agent's container.
    probe = agent_template["spec"]["containers"][0]["livenessProbe"]["exec"]["command"]
    assert node.exec(started["agent"], *probe).exit_code == 0
