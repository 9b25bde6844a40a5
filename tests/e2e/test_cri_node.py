"""The agent image on a node of real containerd (`fixtures.crinode`), run from the DaemonSet's
pod template in manifests/monitor.yaml, measuring pods made through the CRI as the kubelet
makes them: its figures against the pods' own cgroup counters over the same interval."""

import json
import time
from pathlib import Path

import pytest
import yaml
from cri_api.v1 import api_pb2 as cri
from fixtures import containerd, crinode
from fixtures.realnode import Pod

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
# The agent's every 2 s (10 s as deployed) so that the test takes seconds; it writes its
# payloads to its standard output (`--output -`) instead of to the server, which this test
# does not run: the two arguments the fixture adds to the template's.
ADDED_ARGS = ["--interval", "2", "--output", "-"]

pytestmark = pytest.mark.skipif(
    bool(crinode.why_not_runnable() or containerd.why_no_engine()),
    reason=str(crinode.why_not_runnable() or containerd.why_no_engine()),
)


def daemonset_template() -> dict:
    (daemonset,) = [
        document
        for document in yaml.safe_load_all((ROOT / "manifests" / "monitor.yaml").read_text())
        if document and document["kind"] == "DaemonSet"
    ]
    return daemonset["spec"]["template"]


def agent_container(template: dict, volumes: Path, node: crinode.CriNode) -> cri.ContainerConfig:
    """The template's container as the kubelet gives it to the CRI: its image and arguments,
    environment (the downward API's node name and address filled in), security context (the
    pod's user and group), and volumes (host paths as they are, the token Secret and the
    emptyDir as directories of the test's)."""
    spec = template["spec"]
    (container,) = spec["containers"]
    fields = {"spec.nodeName": node.name, "status.hostIP": crinode.NODE_IP}
    env = [
        cri.KeyValue(
            key=item["name"],
            value=item.get("value") or fields[item["valueFrom"]["fieldRef"]["fieldPath"]],
        )
        for item in container["env"]
    ]
    sources = {}
    for volume in spec["volumes"]:
        if "hostPath" in volume:
            sources[volume["name"]] = volume["hostPath"]["path"]
        else:  # the Secret (its key, token) and the emptyDir
            directory = volumes / volume["name"]
            directory.mkdir(mode=0o777)
            directory.chmod(0o777)
            if "secret" in volume:
                (directory / "token").write_text("t0ken\n")
            sources[volume["name"]] = str(directory)
    mounts = [
        cri.Mount(
            container_path=mount["mountPath"],
            host_path=sources[mount["name"]],
            readonly=mount.get("readOnly", False),
        )
        for mount in container["volumeMounts"]
    ]
    pod_security, security = spec["securityContext"], container["securityContext"]
    context = cri.LinuxContainerSecurityContext(
        run_as_user=cri.Int64Value(value=pod_security["runAsUser"]),
        run_as_group=cri.Int64Value(value=pod_security["runAsGroup"]),
        readonly_rootfs=security["readOnlyRootFilesystem"],
        no_new_privs=not security["allowPrivilegeEscalation"],
        privileged=security["privileged"],
        capabilities=cri.Capability(drop_capabilities=security["capabilities"]["drop"]),
        namespace_options=cri.NamespaceOption(pid=cri.NODE if spec["hostPID"] else cri.CONTAINER),
    )
    return cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name=container["name"]),
        image=cri.ImageSpec(image=container["image"]),
        args=[*container["args"], *ADDED_ARGS],
        envs=env,
        mounts=mounts,
        log_path=f"{container['name']}.log",
        linux=cri.LinuxContainerConfig(security_context=context),
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


def test_the_agent_from_the_daemonset_template_measures_pods_made_through_the_cri(node, tmp_path):
    image = "localhost/cloudmon/monitor:0.1.0"
    # A burner held to half a core and a holder of 64 MiB, each in a burstable pod whose
    # cgroup the kubelet made with its limits.
    quota = {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000", "cpu.max": "50000 100000"}
    burner = Pod("burner", "shop", "burstable", {"app": "burner"}, [], limits=quota)
    holder = Pod("holder", "shop", "burstable", {"app": "holder"}, [], limits={})
    holding = f"import time; held = b'x' * {64 * MIB}; time.sleep(3600)"
    work = [(burner, "while True: pass"), (holder, holding)]
    for pod, program in work:
        config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=pod.name),
            image=cri.ImageSpec(image=image),
            command=["python", "-c", program],
            log_path=f"{pod.name}.log",
        )
        node.run_pod(pod, [config])
    template = daemonset_template()
    agent = Pod(
        "cloudmon-agent-x1", "cloudmon", "burstable", template["metadata"]["labels"], [], limits={}
    )
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    node.run_pod(
        agent, [agent_container(template, volumes, node)], host_pid=template["spec"]["hostPID"]
    )

    payloads: list[dict] = []
    deadline = time.monotonic() + 60
    while len(payloads) < 4:
        assert time.monotonic() < deadline, "\n".join(node.output(agent, "agent.log"))[-3000:]
        time.sleep(1)
        payloads = [
            json.loads(line) for line in node.output(agent, "agent.log") if line.startswith("{")
        ]
    # Two successive payloads: the agent's CPU rate over their interval, and the cgroup's.
    before = cpu_seconds(node, burner)
    time.sleep(4)
    after = cpu_seconds(node, burner)
    last = [json.loads(line) for line in node.output(agent, "agent.log") if line.startswith("{")][
        -1
    ]
    pods = {pod["uid"]: pod for pod in last["pods"]}
    print(
        f"burner {pods[burner.uid]['cpu_cores']:.3f} cores (its cgroup: "
        f"{(after - before) / 4:.3f}); holder "
        f"{pods[holder.uid]['memory_working_set_bytes'] / MIB:.1f} MiB; agent "
        f"{pods[agent.uid]['memory_working_set_bytes'] / MIB:.1f} MiB, "
        f"{pods[agent.uid]['cpu_cores'] * 1000:.1f} millicores"
    )
    assert burner.uid in pods and holder.uid in pods and agent.uid in pods
    assert pods[burner.uid]["cpu_cores"] == pytest.approx((after - before) / 4, rel=0.1)
    assert pods[burner.uid]["cpu_cores"] == pytest.approx(0.5, abs=0.1)
    assert pods[holder.uid]["memory_working_set_bytes"] == pytest.approx(64 * MIB, rel=0.3)
    assert last["node"] == node.name
