#!/usr/bin/env python3
"""A stand-in for crictl that prints crictl's real JSON for pods described in a spec file.

Commands (what cloudmon runs):
  fake_crictl.py pods -o json             -> {"items": [sandbox, ...]}
  fake_crictl.py ps -a -o json            -> {"containers": [container, ...]} (all states)
  fake_crictl.py ps -o json               -> the same, running containers only
  fake_crictl.py inspectp -o json <id>    -> {"status": {...}, "info": {...}} of one sandbox
Anything else, or an unknown sandbox ID, exits 1 with a message on stderr, as crictl does.

The spec file is named by the environment variable FAKE_CRICTL_SPEC. It holds a JSON list of
pods, each an object with:
  uid           pod UID (required), as in the pod's cgroup name
  name          pod name (required)
  namespace     namespace (default "default")
  labels        the pod's labels, an object of strings (default {})
  annotations   the pod's annotations (default {})
  sandbox_id    the pod sandbox ID, 64 hex characters (required)
  host_network  true for a hostNetwork pod (default false)
  cpu_shares    the sandbox's CPU shares as the kubelet sets them from the pod's CPU request
                (milli-CPU * 1024 / 1000, at least 2); omitted when absent
  state         "SANDBOX_READY" (default) or "SANDBOX_NOTREADY"
  containers    list of {"id": 64 hex, "name": container name,
                         "state": "CONTAINER_RUNNING" (default), "CONTAINER_EXITED", ...}
Example:
  [{"uid": "3f1c2a7e-9b1d-4c55-8e7a-0a1b2c3d4e5f", "name": "web-7d9c8b6f5d-x2kqp",
    "namespace": "shop", "labels": {"app": "web", "pod-template-hash": "7d9c8b6f5d"},
    "sandbox_id": "<64 hex>", "host_network": false,
    "containers": [{"id": "<64 hex>", "name": "web"}]}]

The shapes follow kubernetes-sigs/cri-tools (protojson with default values: lowerCamelCase keys,
int64 values as strings, enums by name; inspectp's createdAt in RFC 3339) and containerd's
sandbox info (its "config" is Go encoding/json of the CRI PodSandboxConfig: snake_case keys).
"""

import json
import os
import sys

CREATED_NS = 1_700_000_000_000_000_000
CREATED_RFC3339 = "2023-11-14T22:13:20.000000000Z"


def _load() -> list[dict]:
    with open(os.environ["FAKE_CRICTL_SPEC"]) as spec:
        return json.load(spec)


def _kubelet_labels(pod: dict) -> dict:
    return {
        "io.kubernetes.pod.name": pod["name"],
        "io.kubernetes.pod.namespace": pod.get("namespace", "default"),
        "io.kubernetes.pod.uid": pod["uid"],
    }


def _pod_metadata(pod: dict) -> dict:
    return {
        "name": pod["name"],
        "uid": pod["uid"],
        "namespace": pod.get("namespace", "default"),
        "attempt": 0,
    }


def _sandbox(pod: dict) -> dict:
    return {
        "id": pod["sandbox_id"],
        "metadata": _pod_metadata(pod),
        "state": pod.get("state", "SANDBOX_READY"),
        "createdAt": str(CREATED_NS),
        "labels": pod.get("labels", {}) | _kubelet_labels(pod),
        "annotations": pod.get("annotations", {}),
        "runtimeHandler": "",
    }


def _container(pod: dict, container: dict) -> dict:
    image = "sha256:" + "c" * 64
    return {
        "id": container["id"],
        "podSandboxId": pod["sandbox_id"],
        "metadata": {"name": container["name"], "attempt": container.get("attempt", 0)},
        "image": {
            "image": image,
            "annotations": {},
            "userSpecifiedImage": "",
            "runtimeHandler": "",
        },
        "imageRef": image,
        "state": container.get("state", "CONTAINER_RUNNING"),
        "createdAt": str(CREATED_NS + 1_000_000_000),
        "labels": _kubelet_labels(pod) | {"io.kubernetes.container.name": container["name"]},
        "annotations": {
            "io.kubernetes.container.hash": "6f2ab3e1",
            "io.kubernetes.container.restartCount": str(container.get("attempt", 0)),
            "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
            "io.kubernetes.container.terminationMessagePolicy": "File",
            "io.kubernetes.pod.terminationGracePeriod": "30",
        },
        "imageId": image,
    }


def _inspectp(pod: dict) -> dict:
    network = "NODE" if pod.get("host_network") else "POD"
    namespace = pod.get("namespace", "default")
    uid_ = pod["uid"].replace("-", "_")
    resources = {"cpu_period": 100000, "cpu_quota": 0}
    if "cpu_shares" in pod:
        resources["cpu_shares"] = pod["cpu_shares"]
    namespace_options = {"pid": 1} | ({"network": 2} if pod.get("host_network") else {})
    return {
        "status": {
            "id": pod["sandbox_id"],
            "metadata": _pod_metadata(pod),
            "state": pod.get("state", "SANDBOX_READY"),
            "createdAt": CREATED_RFC3339,
            "network": {"additionalIps": [], "ip": "" if pod.get("host_network") else "10.244.1.7"},
            "linux": {
                "namespaces": {
                    "options": {
                        "ipc": "POD",
                        "network": network,
                        "pid": "CONTAINER",
                        "targetId": "",
                        "usernsOptions": None,
                    }
                }
            },
            "labels": pod.get("labels", {}) | _kubelet_labels(pod),
            "annotations": pod.get("annotations", {}),
            "runtimeHandler": "",
        },
        "info": {
            "pid": 4242,
            "processStatus": "running",
            "netNamespaceClosed": False,
            "image": "registry.k8s.io/pause:3.9",
            "snapshotKey": pod["sandbox_id"],
            "snapshotter": "overlayfs",
            "runtimeHandler": "",
            "runtimeType": "io.containerd.runc.v2",
            "runtimeOptions": {"systemd_cgroup": True},
            "config": {
                "metadata": _pod_metadata(pod),
                "hostname": "" if pod.get("host_network") else pod["name"],
                "log_directory": f"/var/log/pods/{namespace}_{pod['name']}_{pod['uid']}",
                "labels": pod.get("labels", {}) | _kubelet_labels(pod),
                "annotations": pod.get("annotations", {}),
                "linux": {
                    "cgroup_parent": f"kubepods-burstable-pod{uid_}.slice",
                    "security_context": {"namespace_options": namespace_options},
                    "resources": resources,
                },
            },
            "runtimeSpec": {
                "ociVersion": "1.1.0",
                "linux": {
                    "cgroupsPath": (
                        f"kubepods-burstable-pod{uid_}.slice:cri-containerd:{pod['sandbox_id']}"
                    )
                },
            },
        },
    }


def main(argv: list[str]) -> int:
    pods = _load()
    if argv == ["pods", "-o", "json"]:
        output = {"items": [_sandbox(pod) for pod in pods]}
    elif argv in (["ps", "-a", "-o", "json"], ["ps", "-o", "json"]):
        running_only = "-a" not in argv
        output = {
            "containers": [
                _container(pod, container)
                for pod in pods
                for container in pod.get("containers", [])
                if not running_only
                or container.get("state", "CONTAINER_RUNNING") == "CONTAINER_RUNNING"
            ]
        }
    elif len(argv) == 4 and argv[:3] == ["inspectp", "-o", "json"]:
        found = [pod for pod in pods if pod["sandbox_id"] == argv[3]]
        if not found:
            print(
                f'getting the pod sandbox status for "{argv[3]}": rpc error: code = NotFound',
                file=sys.stderr,
            )
            return 1
        output = _inspectp(found[0])
    else:
        print(f"fake crictl: unsupported command {' '.join(argv)!r}", file=sys.stderr)
        return 1
    json.dump(output, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
