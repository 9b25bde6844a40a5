"""The images on a node of real containerd (`fixtures.crinode`): the server pod made from the
Deployment's template in manifests/monitor-api.yaml, the agent pod from the DaemonSet's in
manifests/monitor.yaml, sending to the server over the pod network, measuring pods made
through the CRI as the kubelet makes them; their figures, as the server's API gives them,
against the pods' own cgroup counters over the same interval."""

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from agent.metadata import podjson
from cri_api.v1 import api_pb2 as cri
from dashboard import livecluster
from fixtures import containerd, crinode
from fixtures.realnode import Pod

from cloudmon.agent.metadata.quantity import parse_quantity

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
#   node (tests/agent/metadata/kubeserver.py, over TLS), that knows the workload pods;
# - fsGroup: the volumes' directories are given to the pod's group, setgid, as the kubelet
#   gives them; seccompProfile RuntimeDefault and runAsNonRoot are not passed to the CRI.
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


SENT = 20 * MIB  # what the sender sends the receiver over the pod network


@dataclass
class Workload:
    """A workload pod: what it runs and what the API server says of it."""

    pod: Pod
    program: str
    owner: tuple[str, str, str] | None = None
    host_network: bool = False
    qos: str = "Burstable"


@dataclass
class Cluster:
    node: crinode.CriNode
    address: str  # the server's, on the pod network
    pods: dict[str, Pod]  # by name
    containers: dict[str, str]  # container ids by pod name
    templates: dict[str, dict]  # the pod templates, by pod name
    server_sandbox: str
    server_config: cri.ContainerConfig

    def pods_found(self) -> dict:
        found = get_json(self.node, f"{self.address}/api/pods") or {"items": []}
        return {item["uid"]: item for item in found["items"]}


def workloads() -> list[Workload]:
    half_core = {
        "cpu.cfs_period_us": "100000",
        "cpu.cfs_quota_us": "50000",
        "cpu.max": "50000 100000",
    }
    guaranteed = half_core | {"memory.limit_in_bytes": str(128 * MIB), "memory.max": str(128 * MIB)}
    holding = f"import time; held = b'x' * {64 * MIB}; time.sleep(3600)"
    receiving = (
        "import socket; s = socket.create_server(('', 9000)); c, _ = s.accept(); n = 0\n"
        "while data := c.recv(1 << 16): n += len(data)\n"
        "print(n, flush=True); import time; time.sleep(3600)"
    )
    return [
        Workload(
            Pod(
                "burner-5d8f9c-x2kqp", "shop", "burstable", {"app": "burner"}, [], limits=half_core
            ),
            "while True: pass",
            ("ReplicaSet", "burner-5d8f9c", "rs-1"),
        ),
        Workload(
            Pod("holder-0", "shop", "guaranteed", {"app": "holder"}, [], limits=guaranteed),
            holding,
            ("StatefulSet", "holder", "sts-1"),
            qos="Guaranteed",
        ),
        Workload(
            Pod("receiver", "shop", "besteffort", {"app": "receiver"}, [], limits={}),
            receiving,
            qos="BestEffort",
        ),
        Workload(
            Pod("node-exporter-x1", "monitoring", "besteffort", {"app": "node-exporter"}, [], {}),
            "import time; time.sleep(3600)",
            host_network=True,
            qos="BestEffort",
        ),
    ]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The node with the images imported, the server pod (its template), the workload pods,
    a stand-in API server that knows them, the agent pod (its template) sending to the
    server, and a sender that has sent the receiver SENT bytes; once the server has them all."""
    out = tmp_path_factory.mktemp("images")
    containerd.build_images(out)
    directory = tmp_path_factory.mktemp("cluster")
    node = crinode.CriNode(directory / "node")
    try:
        assert node.containerd is not None
        containerd.import_images(node.containerd, out)
        templates = {
            "cloudmon-server": crinode.manifest_template("monitor-api.yaml", "Deployment"),
            "cloudmon-agent": crinode.manifest_template("monitor.yaml", "DaemonSet"),
        }
        server, containers, namespaces = crinode.from_template(
            node, templates["cloudmon-server"], directory / "server", env={}, args=[]
        )
        sandbox, started = node.run_pod(server, containers, **namespaces)
        (server_config,) = containers
        address = f"http://{node.address(sandbox)}:8080"
        deadline = time.monotonic() + 60
        while get_json(node, f"{address}/healthz") is None:  # the startup probe
            log = "\n".join(node.output(server, "server.log"))
            assert time.monotonic() < deadline, log[-3000:]
            time.sleep(1)
        pods, ids = {server.name: server}, {server.name: started["server"]}
        served = {"pods": [], "objects": {}}
        for workload in workloads():
            pod = workload.pod
            config = cri.ContainerConfig(
                metadata=cri.ContainerMetadata(name="main"),
                image=cri.ImageSpec(image=IMAGE),
                command=["python", "-c", workload.program],
                log_path="main.log",
            )
            _, made = node.run_pod(pod, [config], host_network=workload.host_network)
            pods[pod.name], ids[pod.name] = pod, made["main"]
            status = podjson.status_of("main", f"containerd://{made['main']}")
            served["pods"].append(
                podjson.pod(
                    pod.name,
                    pod.uid,
                    namespace=pod.namespace,
                    labels=pod.labels,
                    owner=workload.owner,
                    containers=[podjson.container("main")],
                    statuses=[status],
                    qos=workload.qos,
                    host_network=workload.host_network,
                )
            )
        replicaset = podjson.replicaset("burner-5d8f9c", "rs-1", "burner")
        served["objects"]["/apis/apps/v1/namespaces/shop/replicasets/burner-5d8f9c"] = replicaset
        account = stand_in_api_server(node, served, directory)
        agent, containers, namespaces = crinode.from_template(
            node,
            templates["cloudmon-agent"],
            directory / "agent",
            {"CLOUDMON_SERVER": address},
            AGENT_ARGS,
            service_account=account,
        )
        _, started = node.run_pod(agent, containers, **namespaces)
        pods[agent.name], ids[agent.name] = agent, started["agent"]
        receiver = node.address(node.sandboxes[list(pods).index("receiver")])
        sending = (
            f"import socket; c = socket.create_connection(({receiver!r}, 9000)); "
            f"c.sendall(bytes({SENT})); c.close(); import time; time.sleep(3600)"
        )
        sender = Pod("sender", "shop", "besteffort", {"app": "sender"}, [], limits={})
        config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name="main"),
            image=cri.ImageSpec(image=IMAGE),
            command=["python", "-c", sending],
            log_path="main.log",
        )
        _, made = node.run_pod(sender, [config])
        pods["sender"], ids["sender"] = sender, made["main"]
        made_cluster = Cluster(node, address, pods, ids, templates, sandbox, server_config)
        deadline = time.monotonic() + 90
        while not {pod.uid for pod in pods.values()} <= set(made_cluster.pods_found()):
            assert time.monotonic() < deadline, "\n".join(node.output(agent, "agent.log"))[-3000:]
            time.sleep(1)
        yield made_cluster
    finally:
        node.close()


def test_every_pod_is_there_with_its_names_qos_and_containers(cluster):
    found = cluster.pods_found()
    pods = cluster.pods
    identity = ("name", "namespace", "deployment", "workload_kind")
    burner, holder = found[pods["burner-5d8f9c-x2kqp"].uid], found[pods["holder-0"].uid]
    # Names, namespaces and workloads as the agent's default source, the API server, gives them.
    assert [burner[key] for key in identity] == [
        "burner-5d8f9c-x2kqp",
        "shop",
        "burner",
        "Deployment",
    ]
    # A StatefulSet's pod: its deployment is its app label (the contract's last resort).
    assert [holder[key] for key in identity] == ["holder-0", "shop", "holder", "StatefulSet"]
    qos = {name: found[pod.uid]["info"]["qos"] for name, pod in pods.items()}
    assert qos["burner-5d8f9c-x2kqp"] == "burstable" and qos["holder-0"] == "guaranteed"
    assert qos["receiver"] == qos["node-exporter-x1"] == "besteffort"
    assert {found[pod.uid]["node"] for pod in pods.values()} == {cluster.node.name}
    # A pod's containers are its own, not its sandbox (pause).
    containers = get_json(
        cluster.node, f"{cluster.address}/api/pods/shop/burner-5d8f9c-x2kqp/containers"
    )
    assert [container["name"] for container in containers["items"]] == ["main"]


def test_cpu_memory_and_limits_as_the_pods_cgroups_have_them(cluster):
    burner, holder = cluster.pods["burner-5d8f9c-x2kqp"], cluster.pods["holder-0"]
    before = cpu_seconds(cluster.node, burner)
    time.sleep(4)
    after = cpu_seconds(cluster.node, burner)
    found = cluster.pods_found()
    burned = found[burner.uid]["metrics"]["cpu_cores"]
    held = found[holder.uid]["metrics"]["memory_working_set_bytes"]
    print(
        f"burner {burned:.3f} cores (its cgroup: {(after - before) / 4:.3f}),",
        f"holder {held / MIB:.1f} MiB",
    )
    assert burned == pytest.approx((after - before) / 4, rel=0.1)
    assert burned <= 0.55  # its pod's quota holds it: half a core
    assert held == pytest.approx(64 * MIB, rel=0.3)
    assert found[burner.uid]["metrics"]["cpu_limit_cores"] == pytest.approx(0.5)
    assert found[holder.uid]["metrics"]["memory_limit_bytes"] == 128 * MIB
    assert found[cluster.pods["receiver"].uid]["metrics"]["cpu_limit_cores"] is None


def test_traffic_over_the_pod_network_and_a_host_network_pod(cluster):
    receiver = cluster.pods["receiver"]
    deadline = time.monotonic() + 30
    while cluster.node.output(receiver, "main.log") != [str(SENT)]:
        assert time.monotonic() < deadline, cluster.node.output(receiver, "main.log")
        time.sleep(0.5)
    time.sleep(3)  # a sample after it
    found = cluster.pods_found()
    assert found[receiver.uid]["metrics"]["network_rx_bytes_total"] >= SENT
    assert found[cluster.pods["sender"].uid]["metrics"]["network_tx_bytes_total"] >= SENT
    # In the node's network namespace, its traffic is the node's: none of its own.
    exporter = found[cluster.pods["node-exporter-x1"].uid]["metrics"]
    assert exporter["network_rx_bytes_total"] is None and exporter["network_rx_bps"] is None


def test_probes_pass_and_memory_stays_within_the_manifests(cluster):
    assert get_json(cluster.node, f"{cluster.address}/readyz") is not None
    agent = cluster.templates["cloudmon-agent"]["spec"]["containers"][0]
    probe = agent["livenessProbe"]["exec"]["command"]
    assert cluster.node.exec(cluster.containers["cloudmon-agent"], *probe).exit_code == 0
    found = cluster.pods_found()
    for name, template in cluster.templates.items():
        (container,) = template["spec"]["containers"]
        limit = float(parse_quantity(container["resources"]["limits"]["memory"]))
        used = found[cluster.pods[name].uid]["metrics"]["memory_working_set_bytes"]
        print(f"{name}: working set {used / MIB:.1f} MiB, limit {limit / MIB:.0f} MiB")
        assert used < limit


def test_top_lists_the_pods_from_the_server(cluster):
    top = cluster.node.in_network(
        sys.executable, "-m", "cloudmon", "top", "pods", "-n", "shop", "--server", cluster.address
    )
    assert top.returncode == 0, top.stderr
    assert "burner-5d8f9c-x2kqp" in top.stdout and "holder-0" in top.stdout


def test_the_dashboard_lists_the_pods(cluster, playwright, tmp_path):
    # Debian's chromium, driven by Playwright over its pipes, in the node's network.
    if not Path(livecluster.CHROMIUM).exists():
        pytest.skip(f"{livecluster.CHROMIUM} is missing (apt-get install chromium)")
    chromium = tmp_path / "chromium"
    network = f"--net=/var/run/netns/{cluster.node.netns}"
    chromium.write_text(f'#!/bin/sh\nexec nsenter {network} {livecluster.CHROMIUM} "$@"\n')
    chromium.chmod(0o755)
    # The pods the API server named into shop (the sender, made after it, keeps its UID).
    found = cluster.pods_found().values()
    expected = sorted(pod["name"] for pod in found if pod["namespace"] == "shop")
    assert expected == ["burner-5d8f9c-x2kqp", "holder-0", "receiver"]
    browser = playwright.chromium.launch(
        executable_path=str(chromium), args=livecluster.CHROMIUM_ARGS
    )
    try:
        page = browser.new_page()
        page.goto(f"{cluster.address}/#/pods?q=shop&sort=name")
        livecluster.wait_rows(page, "pods", len(expected))
        assert sorted(livecluster.link_texts(page, "pods", "name")) == expected
    finally:
        browser.close()


def test_a_restarted_server_loses_nothing(cluster):
    # The server's container stopped and made again in its pod, as the kubelet restarts it:
    # what the agent sampled meanwhile it kept and sends, and the SQLite file on the volume
    # keeps what came before.
    node, burner = cluster.node, cluster.pods["burner-5d8f9c-x2kqp"]
    latest = get_json(node, f"{cluster.address}/api/pods/shop/{burner.name}")
    first = latest["timestamp"]  # the newest bucket the server had before it stopped
    stop = cri.StopContainerRequest(container_id=cluster.containers["cloudmon-server"], timeout=30)
    node.runtime.StopContainer(stop)
    assert get_json(node, f"{cluster.address}/healthz") is None
    time.sleep(30)  # at least two whole buckets without a server
    restarted = time.time()
    node.restart(cluster.server_sandbox, cluster.server_config, attempt=1)
    deadline = time.monotonic() + 60
    while get_json(node, f"{cluster.address}/healthz") is None:
        assert time.monotonic() < deadline
        time.sleep(1)
    last = int(restarted) // 10 * 10 - 10  # the last bucket before the restart
    url = (
        f"{cluster.address}/api/pods/shop/{burner.name}"
        f"?start={first}&end={last + 9}&step=10s&metrics=cpu_cores"
    )
    deadline = time.monotonic() + 60
    while True:  # until the agent's spool has drained
        series = (get_json(node, url) or {}).get("series", {})
        if series and None not in series["cpu_cores"]:
            break
        assert time.monotonic() < deadline, series
        time.sleep(1)
    assert series["timestamps"] == list(range(first, last + 1, 10))
    assert len(series["timestamps"]) >= 3
