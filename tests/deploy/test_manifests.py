"""manifests/: valid for every Kubernetes version from 1.29 on, and consistent with the code."""

import copy
import inspect
import re
import threading
from pathlib import Path

import click
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

from cloudmon.agent import paths
from cloudmon.agent.main import run_agent
from cloudmon.agent.metadata import apiserver
from cloudmon.agent.metadata.quantity import memory_bytes as parse_quantity
from cloudmon.cli import main as cli
from cloudmon.server import autoscalers
from cloudmon.server.app import create_app
from cloudmon.sizes import parse_size
from cloudmon.storage import open_storage

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
CRICTL_COMPONENT = MANIFESTS / "components" / "crictl" / "kustomization.yaml"
# bench/agent.py, one cycle on a 110-pod node: resident memory and CPU per 10 s cycle.
AGENT_RSS_BYTES = 25 * 2**20
AGENT_CPU_SECONDS_PER_CYCLE = 0.030
OLDEST_VERSION = (1, 29)


def load(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]


def kustomized() -> list[dict]:
    """What `kubectl apply -k manifests/` applies (the kustomization only lists resources)."""
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert set(kustomization) == {"apiVersion", "kind", "resources"}
    return [doc for name in kustomization["resources"] for doc in load(name)]


def find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def json_patch(doc: dict, operations: list[dict]) -> dict:
    """RFC 6902 add, replace and remove, the only operations the components and overlays
    use."""
    doc = copy.deepcopy(doc)
    for operation in operations:
        *parents, last = operation["path"].lstrip("/").split("/")
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if operation["op"] == "add" and isinstance(target, list):
            target.insert(len(target) if last == "-" else int(last), operation["value"])
        elif operation["op"] == "replace" and isinstance(target, list):
            target[int(last)] = operation["value"]
        elif operation["op"] in ("add", "replace"):
            if operation["op"] == "replace":
                assert last in target, operation["path"]
            target[last] = operation["value"]
        elif operation["op"] == "remove":
            del target[int(last) if isinstance(target, list) else last]
        else:
            raise AssertionError(f"unexpected operation {operation}")
    return doc


def with_crictl(docs: list[dict]) -> list[dict]:
    component = yaml.safe_load(CRICTL_COMPONENT.read_text())
    assert component["kind"] == "Component"
    patched = list(docs)
    for patch in component["patches"]:
        target = patch["target"]
        doc = find(patched, target["kind"], target["name"])
        patched[patched.index(doc)] = json_patch(doc, yaml.safe_load(patch["patch"]))
    return patched


DOCS = kustomized()
AGENT_DS = find(DOCS, "DaemonSet", "cloudmon-agent")
SERVER_DEPLOY = find(DOCS, "Deployment", "cloudmon-server")
AGENT_POD = AGENT_DS["spec"]["template"]["spec"]
SERVER_POD = SERVER_DEPLOY["spec"]["template"]["spec"]
(AGENT,) = AGENT_POD["containers"]
(SERVER,) = SERVER_POD["containers"]


def kubernetes_versions() -> list[str]:
    """The newest release of every minor version kubernetes-validate ships, 1.29 on."""
    newest: dict[tuple[int, int], tuple[int, ...]] = {}
    for text in kv_utils.all_versions():
        version = tuple(int(part) for part in text.split("."))
        if version[:2] >= OLDEST_VERSION:
            newest[version[:2]] = max(version, newest.get(version[:2], version))
    return [".".join(map(str, v)) for _, v in sorted(newest.items())]


def test_every_manifest_file_is_in_the_kustomization():
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(
        p.name for p in MANIFESTS.glob("*.yaml") if p.stem != "kustomization"
    )
    assert len(kubernetes_versions()) >= 8  # 1.29 to at least 1.36


@pytest.mark.parametrize("version", kubernetes_versions())
@pytest.mark.parametrize("variant", ["base", "crictl"])
def test_valid_for_kubernetes(version, variant):
    docs = DOCS if variant == "base" else with_crictl(DOCS)
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_refuses_an_unknown_field():
    broken = copy.deepcopy(AGENT_DS)
    broken["spec"]["template"]["spec"]["containers"][0]["readOnly"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_versions()[0], strict=True)


def test_everything_namespaced_is_in_the_cloudmon_namespace():
    namespace = find(DOCS, "Namespace")["metadata"]["name"]
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}
    for doc in DOCS:
        assert (doc["metadata"].get("namespace") is None) == (doc["kind"] in cluster_scoped)
        assert doc["metadata"].get("namespace") in (None, namespace)
    assert namespace == "cloudmon"


# --- the agent ------------------------------------------------------------------------------


def mounts(pod: dict, container: dict) -> dict[str, tuple[dict, dict]]:
    """mountPath -> (volumeMount, volume)."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"]: (m, volumes[m["name"]]) for m in container["volumeMounts"]}


def test_host_file_systems_are_mounted_read_only_where_the_agent_looks():
    by_path = mounts(AGENT_POD, AGENT)
    expected = {
        paths.HOST_PROC: paths.PROC,
        paths.HOST_CGROUP: paths.CGROUP,
        paths.HOST_ROOTFS: paths.ROOTFS,
    }
    for mount_path, host_path in expected.items():
        mount, volume = by_path[mount_path]
        assert volume["hostPath"]["path"] == host_path
        assert mount["readOnly"] is True
    host_mounts = [m for m, v in by_path.values() if "hostPath" in v]
    assert all(m.get("readOnly") is True for m in host_mounts)
    assert len(host_mounts) == len(expected)


def envvars(command: click.Command) -> set[str]:
    return {p.envvar for p in command.params if isinstance(p.envvar, str)}


def test_agent_env_is_what_the_agent_reads():
    env = {e["name"]: e for e in AGENT["env"]}
    read_by_cli = envvars(cli.commands["agent"])
    # NODE_IP is read by run_agent itself, for the kubelet's URL.
    assert "NODE_IP" in inspect.getsource(run_agent)
    assert set(env) <= read_by_cli | {"NODE_IP"}
    assert {"NODE_NAME", "NODE_IP", "CLOUDMON_SERVER", "CLOUDMON_TOKEN_FILE"} <= set(env)
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["NODE_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    assert env["CLOUDMON_PROC_ROOT"]["value"] == paths.HOST_PROC
    assert env["CLOUDMON_CGROUP_ROOT"]["value"] == paths.HOST_CGROUP
    assert env["CLOUDMON_ROOTFS"]["value"] == paths.HOST_ROOTFS


def test_agent_sends_to_the_service_with_the_secret_token():
    env = {e["name"]: e.get("value") for e in AGENT["env"]}
    service = find(DOCS, "Service", "cloudmon-server")
    port = service["spec"]["ports"][0]["port"]
    namespace = service["metadata"]["namespace"]
    assert env["CLOUDMON_SERVER"] == f"http://{service['metadata']['name']}.{namespace}.svc:{port}"
    for pod, container in ((AGENT_POD, AGENT), (SERVER_POD, SERVER)):
        token_file = {e["name"]: e.get("value") for e in container["env"]}["CLOUDMON_TOKEN_FILE"]
        mount, volume = mounts(pod, container)[str(Path(token_file).parent)]
        assert volume["secret"]["secretName"] == "cloudmon-token"
        assert Path(token_file).name == "token"
        assert mount["readOnly"] is True
    assert re.search(r"^SECRET=cloudmon-token$", (ROOT / "deploy").read_text(), re.M)


def test_agent_spool_is_a_writable_volume():
    spool = {e["name"]: e.get("value") for e in AGENT["env"]}["CLOUDMON_SPOOL_DIR"]
    mount, volume = mounts(AGENT_POD, AGENT)[spool]
    assert "emptyDir" in volume and volume["emptyDir"]["sizeLimit"]
    assert not mount.get("readOnly")


class _Stream:
    def lines(self):
        return iter(())

    def abort(self):
        pass

    def close(self):
        pass


def owner(kind: str, name: str) -> dict:
    return {"kind": kind, "name": name, "uid": f"uid-{name}", "controller": True}


def metadata_calls(monkeypatch) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of every request the apiserver source makes."""
    requests: list[str] = []
    watched = threading.Event()
    pods = [
        {
            "metadata": {
                "name": "web-1",
                "namespace": "a",
                "uid": "p1",
                "ownerReferences": [owner("ReplicaSet", "web-5d")],
            }
        },
        {
            "metadata": {
                "name": "cron-1",
                "namespace": "a",
                "uid": "p2",
                "ownerReferences": [owner("Job", "cron-28")],
            }
        },
    ]
    parents = {"replicasets": owner("Deployment", "web"), "jobs": owner("CronJob", "cron")}

    class FakeClient:
        def __init__(self, *args, **kwargs):
            pass

        def get_json(self, path):
            requests.append(path)
            if path.startswith("/api/v1/pods?"):
                return {"kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": pods}
            resource, name = path.split("/")[-2:]
            return {"metadata": {"uid": f"uid-{name}", "ownerReferences": [parents[resource]]}}

        def open(self, path, timeout):
            requests.append(path)
            watched.set()
            return _Stream()

    monkeypatch.setattr(apiserver, "Client", FakeClient)
    source = apiserver.ApiServerSource("node-1", apiserver_url="https://apiserver:443")
    try:
        found = source.list_pods()
        assert watched.wait(5)
    finally:
        source.close()
    assert {pod.deployment for pod in found.values()} >= {"web"}
    calls = set()
    for request in requests:
        path, _, query = request.partition("?")
        parts = path.strip("/").split("/")
        group = "" if parts[0] == "api" else parts[1]
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        if rest[0] == "namespaces":
            rest = rest[2:]
        resource = rest[0]
        if len(rest) > 1:
            verb = "get"
        else:
            verb = "watch" if "watch=true" in query else "list"
            assert "fieldSelector=spec.nodeName" in query
        calls.add((group, resource, verb))
    return calls


def grants(role: dict) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of each thing a ClusterRole allows."""
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rbac_is_exactly_what_the_metadata_source_calls(monkeypatch):
    role = find(DOCS, "ClusterRole", "cloudmon-agent")
    granted = grants(role)
    called = metadata_calls(monkeypatch)
    # get on pods comes with list: a pod read by name is no more than the list shows.
    assert granted == called | {("", "pods", "get")}
    assert all(
        "nonResourceURLs" not in rule and "resourceNames" not in rule for rule in role["rules"]
    )
    binding = find(DOCS, "ClusterRoleBinding", "cloudmon-agent")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": AGENT_POD["serviceAccountName"], "namespace": "cloudmon"}
    ]
    assert "nodes" not in yaml.safe_dump(role)


def test_server_rbac_is_exactly_what_right_sizing_calls():
    role = find(DOCS, "ClusterRole", "cloudmon-server")
    granted = grants(role)
    group, version, resource = autoscalers.PATH.removeprefix("/apis/").split("/")
    assert version == "v2"
    assert granted == {(group, resource, "list")}
    binding = find(DOCS, "ClusterRoleBinding", "cloudmon-server")
    assert binding["roleRef"]["name"] == "cloudmon-server"
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": SERVER_POD["serviceAccountName"],
            "namespace": "cloudmon",
        }
    ]


def quantity(text: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    text = str(text)
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def test_agent_resources_cover_the_measured_footprint():
    resources = AGENT["resources"]
    requests = {k: quantity(v) for k, v in resources["requests"].items()}
    limits = {k: quantity(v) for k, v in resources["limits"].items()}
    assert requests["memory"] >= AGENT_RSS_BYTES and limits["memory"] >= 4 * AGENT_RSS_BYTES
    interval = (
        cli.commands["agent"]
        .params[[p.name for p in cli.commands["agent"].params].index("interval")]
        .default
    )
    assert requests["cpu"] >= AGENT_CPU_SECONDS_PER_CYCLE / interval
    # At the limit a cycle still takes under a tenth of the interval.
    assert AGENT_CPU_SECONDS_PER_CYCLE / limits["cpu"] < interval / 10
    assert limits["memory"] >= requests["memory"] and limits["cpu"] >= requests["cpu"]


def test_agent_runs_on_every_node_with_the_fewest_privileges():
    assert AGENT_POD["tolerations"] == [{"operator": "Exists"}]
    assert "nodeSelector" not in AGENT_POD and "affinity" not in AGENT_POD
    assert AGENT_POD["hostPID"] is True
    assert not AGENT_POD.get("hostNetwork") and not AGENT_POD.get("hostIPC")
    pod_security = AGENT_POD["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    security = AGENT["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["privileged"] is False
    priority = find(DOCS, "PriorityClass", AGENT_POD["priorityClassName"])
    assert 0 < priority["value"] < 1_000_000_000  # below the system-* classes
    update = AGENT_DS["spec"]["updateStrategy"]
    assert update["type"] == "RollingUpdate" and update["rollingUpdate"]["maxUnavailable"] >= 1


def test_crictl_component_mounts_the_socket_crictl_is_told_about():
    ds = find(with_crictl(DOCS), "DaemonSet", "cloudmon-agent")
    pod = ds["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CLOUDMON_METADATA"] == "crictl"
    assert (
        "crictl"
        in next(p for p in cli.commands["agent"].params if p.name == "metadata").type.choices
    )
    socket = env["CONTAINER_RUNTIME_ENDPOINT"].removeprefix("unix://")
    _, volume = mounts(pod, container)[socket]
    assert volume["hostPath"] == {"path": socket, "type": "Socket"}
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


# --- the server -----------------------------------------------------------------------------


def server_option(name: str):
    """The default of an option of `cloudmon server`."""
    return next(p for p in cli.commands["server"].params if p.name == name).default


def test_server_probes_and_scrape_path_are_real_routes(tmp_path, request):
    storage = open_storage(f"sqlite:///{tmp_path}/probe.db")
    request.addfinalizer(storage.close)
    app = create_app({"CLOUDMON_STORAGE": storage})
    routes = {rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert SERVER["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert SERVER["livenessProbe"]["httpGet"]["path"] == "/healthz"
    annotations = SERVER_DEPLOY["spec"]["template"]["metadata"]["annotations"]
    probed = {
        SERVER[probe]["httpGet"]["path"]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe")
    }
    assert probed | {annotations["prometheus.io/path"]} <= routes
    assert annotations["prometheus.io/scrape"] == "true"
    client = app.test_client()
    for path in probed:
        assert client.get(path).status_code == 200


def test_service_port_is_the_container_port_is_the_servers_default():
    default_port = server_option("port")
    (container_port,) = SERVER["ports"]
    assert container_port["containerPort"] == default_port
    assert f"--port={default_port}" in SERVER["args"]
    service = find(DOCS, "Service", "cloudmon-server")
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == default_port and port["targetPort"] == container_port["name"]
    assert (
        service["spec"]["selector"].items()
        <= SERVER_DEPLOY["spec"]["template"]["metadata"]["labels"].items()
    )
    annotations = SERVER_DEPLOY["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(default_port)
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert SERVER[probe]["httpGet"]["port"] == container_port["name"]


def test_server_keeps_its_sqlite_file_on_the_claim():
    assert SERVER_DEPLOY["spec"]["replicas"] == 1
    assert SERVER_DEPLOY["spec"]["strategy"] == {"type": "Recreate"}
    storage = next(a for a in SERVER["args"] if a.startswith("--storage=")).removeprefix(
        "--storage="
    )
    assert storage.startswith("sqlite:////")
    database = Path(storage.removeprefix("sqlite:///"))
    mount, volume = mounts(SERVER_POD, SERVER)[str(database.parent)]
    claim = find(DOCS, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert not mount.get("readOnly")
    assert SERVER["args"][0] == "server"
    assert set(
        envvars(cli.commands["server"]) if "server" in cli.commands else {"CLOUDMON_TOKEN_FILE"}
    ) >= {e["name"] for e in SERVER["env"]}


def test_server_keeps_its_store_below_the_claim():
    storage = next(a for a in SERVER["args"] if a.startswith("--storage=")).removeprefix(
        "--storage="
    )
    database = Path(storage.removeprefix("sqlite:///"))
    _, volume = mounts(SERVER_POD, SERVER)[str(database.parent)]
    claim = find(DOCS, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    claimed = parse_quantity(claim["spec"]["resources"]["requests"]["storage"])
    (size,) = [
        a.removeprefix("--retention-size=") for a in SERVER["args"] if "--retention-size" in a
    ]
    # Room beside the store for its WAL, a backup written to the volume and SQLite's temporary
    # files: a tenth of the volume at least.
    assert parse_size(size) <= 0.9 * claimed


def test_server_runs_as_the_images_non_root_user():
    pod_security = SERVER_POD["securityContext"]
    uid = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert pod_security["runAsNonRoot"] is True
    assert (pod_security["runAsUser"], pod_security["runAsGroup"]) == (int(uid[1]), int(uid[2]))
    assert pod_security["fsGroup"] == pod_security["runAsGroup"]
    security = SERVER["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert (
        security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    )
    # Its token may list HorizontalPodAutoscalers and nothing else (test_server_rbac...).
    assert SERVER_POD["automountServiceAccountToken"] is True
    assert "/tmp" in mounts(SERVER_POD, SERVER)
    requests = {k: quantity(v) for k, v in SERVER["resources"]["requests"].items()}
    limits = {k: quantity(v) for k, v in SERVER["resources"]["limits"].items()}
    assert all(limits[k] >= requests[k] for k in ("cpu", "memory"))


def test_images_are_the_ones_deploy_builds():
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    assert AGENT["image"] == f"localhost/cloudmon/monitor:{version}"
    assert SERVER["image"] == f"localhost/cloudmon/monitor-api:{version}"
    deploy = (ROOT / "deploy").read_text()
    assert 'agent_image="localhost/cloudmon/monitor:$version"' in deploy
    assert 'server_image="localhost/cloudmon/monitor-api:$version"' in deploy
    # A missing image is never pulled from elsewhere: localhost is no public registry.
    assert AGENT["imagePullPolicy"] == SERVER["imagePullPolicy"] == "IfNotPresent"


# --- the scale-out overlay ------------------------------------------------------------------

SCALE_OUT = MANIFESTS / "overlays" / "scale-out"


def overlay(directory: Path) -> list[dict]:
    """What `kubectl apply -k` applies for an overlay: the base (its only directory resource),
    its own files, then its patches (RFC 6902 by target, or a `$patch: delete`)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) == {"apiVersion", "kind", "resources", "patches"}
    docs = []
    for resource in kustomization["resources"]:
        if (directory / resource).resolve() == MANIFESTS:
            docs += kustomized()
        else:
            docs += [d for d in yaml.safe_load_all((directory / resource).read_text()) if d]
    for patch in kustomization["patches"]:
        body = yaml.safe_load(patch["patch"])
        if isinstance(body, dict):
            assert body.pop("$patch") == "delete"
            docs.remove(find(docs, body["kind"], body["metadata"]["name"]))
            continue
        doc = find(docs, patch["target"]["kind"], patch["target"]["name"])
        docs[docs.index(doc)] = json_patch(doc, body)
    return docs


SCALED = overlay(SCALE_OUT)
SCALED_SERVER = find(SCALED, "Deployment", "cloudmon-server")


@pytest.mark.parametrize("version", kubernetes_versions())
def test_scale_out_is_valid_for_kubernetes(version):
    for doc in SCALED:
        kubernetes_validate.validate(doc, version, strict=True)


def test_scale_out_servers_keep_no_state_and_scale():
    pod = SCALED_SERVER["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "persistentVolumeClaim" not in yaml.safe_dump(pod)
    assert not [d for d in SCALED if d["kind"] == "PersistentVolumeClaim"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/etc/cloudmon/token", "/tmp"}
    autoscaler = find(SCALED, "HorizontalPodAutoscaler", "cloudmon-server")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "cloudmon-server")
    assert 2 <= autoscaler["spec"]["minReplicas"] == SCALED_SERVER["spec"]["replicas"]
    assert autoscaler["spec"]["maxReplicas"] > autoscaler["spec"]["minReplicas"]
    # The autoscaler's CPU target needs a CPU request.
    assert container["resources"]["requests"]["cpu"]
    assert SCALED_SERVER["spec"]["strategy"]["type"] == "RollingUpdate"


def service_url(name: str) -> tuple[str, int]:
    service = find(SCALED, "Service", name)
    (port,) = service["spec"]["ports"]
    return f"{name}.{service['metadata']['namespace']}.svc", port["port"]


def test_scale_out_storage_url_points_at_vmselect_and_vminsert():
    (container,) = SCALED_SERVER["spec"]["template"]["spec"]["containers"]
    (storage,) = [a.removeprefix("--storage=") for a in container["args"] if "--storage" in a]
    store = open_storage(storage)
    try:
        for endpoint, service, path in (
            (store.client.read_endpoint, "vmselect", "/select/0/prometheus"),
            (store.client.write_endpoint, "vminsert", "/insert/0/prometheus/api/v1/write"),
        ):
            assert (endpoint.host, endpoint.port) == service_url(service)
            assert endpoint.path == path
    finally:
        store.close()


def test_scale_out_vminsert_and_vmselect_reach_every_vmstorage_shard():
    storage = find(SCALED, "StatefulSet", "vmstorage")
    headless = find(SCALED, "Service", storage["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    shards = [
        f"vmstorage-{i}.{headless['metadata']['name']}.cloudmon.svc"
        for i in range(storage["spec"]["replicas"])
    ]
    (vmstorage,) = storage["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in vmstorage["ports"]}
    for name in ("vminsert", "vmselect"):
        (container,) = find(SCALED, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        (nodes,) = [
            a.removeprefix("-storageNode=") for a in container["args"] if "storageNode" in a
        ]
        assert nodes.split(",") == [f"{shard}:{ports[name]}" for shard in shards]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] and security["capabilities"] == {"drop": ["ALL"]}
