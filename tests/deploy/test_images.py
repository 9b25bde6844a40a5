"""The Dockerfile, and its images built for real: as `make images` builds them (`./deploy
--images-only`, with the engine found here), imported into a containerd of the test's own as
`./deploy --nodes local` imports them, and run there."""

import json
import os
import re
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from fixtures import containerd
from fixtures.servers import free_port

from cloudmon.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
VERSION = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]


def stages() -> dict[str, str]:
    """Stage name -> its text."""
    parts = re.split(r"^FROM (\S+) AS (\S+)$", DOCKERFILE, flags=re.M)
    return {
        name: f"FROM {base}\n{body}"
        for base, name, body in zip(*[iter(parts[1:])] * 3, strict=True)
    }


def test_dockerfile_has_both_targets_on_python_slim():
    found = stages()
    assert {"agent", "server"} <= set(found)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE, re.M)
    assert all(text.startswith(("FROM ${PYTHON_IMAGE}", "FROM runtime")) for text in found.values())
    assert found["agent"].startswith("FROM runtime") and found["server"].startswith("FROM runtime")
    # No compiler or package manager step anywhere; the package is installed from its wheel.
    assert not re.search(r"apt-get|apk |gcc|build-essential", DOCKERFILE)
    assert "pip wheel" in found["wheels"]
    assert re.search(r"--no-index\s+\\\n\s+--find-links /wheels cloudmon", found["runtime"])
    assert "COPY src" not in found["runtime"] + found["agent"] + found["server"]
    assert re.search(rf"^ARG VERSION={re.escape(VERSION)}$", DOCKERFILE, re.M)
    assert 'org.opencontainers.image.version="${VERSION}"' in DOCKERFILE
    for arch in ("AMD64", "ARM64"):
        assert re.search(rf"^ARG CRICTL_SHA256_{arch}=[0-9a-f]{{64}}$", DOCKERFILE, re.M)


def test_server_image_is_non_root_with_a_healthcheck_on_a_real_route():
    server = stages()["server"]
    user = re.search(r"^USER (\d+):(\d+)$", server, re.M)
    assert user and int(user[1]) != 0 and int(user[2]) != 0
    port = str(next(p for p in cli.commands["server"].params if p.name == "port").default)
    healthcheck = re.search(r"^HEALTHCHECK .*\n.*CMD (.+)$", server, re.M)
    assert f"http://127.0.0.1:{port}/healthz" in healthcheck[1]
    assert f'"--port", "{port}"' in server and "sqlite:////data/cloudmon.db" in server
    assert 'VOLUME ["/data"]' in server and f"EXPOSE {port}" in server
    assert 'CMD ["cloudmon", "health"' in stages()["agent"]
    assert re.search(r'^CMD \["agent"\]$', stages()["agent"], re.M)


def test_dockerignore_sends_only_the_package_sources():
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {line[1:] for line in lines if line.startswith("!")} == {
        "pyproject.toml",
        "README.md",
        "src/",
    }
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M))
    assert copied == {"pyproject.toml README.md", "src"}


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    if reason := containerd.why_no_engine():
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("images")
    seconds = containerd.build_images(out)
    sizes = {tar.name: tar.stat().st_size / 2**20 for tar in out.glob("*.tar")}
    print(f"images built in {seconds:.0f} s: {sizes} MiB")
    return out


@pytest.fixture(scope="module")
def node(images, tmp_path_factory):
    """A containerd of its own, with the images imported as ./deploy imports them into a
    node's (`--nodes local`)."""
    if reason := containerd.why_not_runnable():
        pytest.skip(reason)
    runtime = containerd.Containerd(tmp_path_factory.mktemp("containerd"))
    try:
        containerd.import_images(runtime, images)
        yield runtime
    finally:
        runtime.close()


def archived_tags(tar: Path) -> list[str]:
    """The tags of the images a docker-archive holds."""
    with tarfile.open(tar) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
    return [tag for image in manifest for tag in image["RepoTags"]]


def test_make_images_saves_both_images_as_docker_archives(images):
    assert archived_tags(images / "monitor.tar") == [f"localhost/cloudmon/monitor:{VERSION}"]
    assert archived_tags(images / "monitor-api.tar") == [
        f"localhost/cloudmon/monitor-api:{VERSION}"
    ]


def test_the_agent_image_runs_on_a_read_only_root_without_capabilities(node):
    # The DaemonSet's user (65534) needs a pod's security context: ctr runs as the image says.
    options = ("--read-only", *(f"--cap-drop={name}" for name in containerd.DEFAULT_CAPABILITIES))
    checks = "cloudmon agent --help; grep CapEff /proc/self/status; command -v crictl || echo none"
    image = f"localhost/cloudmon/monitor:{VERSION}"
    found = node.run(image, "agent", "sh", "-c", checks, options=options).stdout
    assert "--server" in found and "--interval" in found
    assert re.search(r"^CapEff:\s+0+$", found, re.M), found
    # Built with --no-crictl: no crictl; its metadata comes from the kubelet or the API server.
    assert found.splitlines()[-1] == "none"


def test_the_server_image_serves_from_its_volume_as_its_own_user(node, tmp_path):
    # Its volumes as manifests/monitor-api.yaml mounts them: the PVC (owned by the image's
    # user, as fsGroup makes it on a cluster), the token Secret, an emptyDir at /tmp.
    data, scratch, token = tmp_path / "data", tmp_path / "tmp", tmp_path / "token"
    data.mkdir()
    scratch.mkdir(mode=0o1777)
    scratch.chmod(0o1777)
    os.chown(data, 10001, 10001)
    token.write_text("t0ken\n")
    port = free_port()
    mounts = {data: "/data:rw", scratch: "/tmp:rw", token: "/etc/cloudmon/token:ro"}
    options = ["--read-only", "--net-host", "--detach", f"--log-uri=file://{tmp_path}/log"]
    for source, target in mounts.items():
        where, mode = target.split(":")
        options.append(f"--mount=type=bind,src={source},dst={where},options=rbind:{mode}")
    command = (
        *("cloudmon", "server", "--host=127.0.0.1", f"--port={port}"),
        *("--storage=sqlite:////data/cloudmon.db", "--token-file=/etc/cloudmon/token"),
    )
    image = f"localhost/cloudmon/monitor-api:{VERSION}"
    node.run(image, "server", *command, options=options)
    deadline = time.monotonic() + 60
    while True:
        try:
            assert get(f"http://127.0.0.1:{port}/healthz") == 200
            break
        except OSError:
            log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
            assert "RUNNING" in node.ctr("tasks", "ls").stdout, log[-3000:]
            assert time.monotonic() < deadline, "no answer on /healthz within 60 s"
            time.sleep(0.3)
    assert get(f"http://127.0.0.1:{port}/readyz") == 200
    assert (data / "cloudmon.db").stat().st_uid == 10001
    processes = node.ctr("tasks", "ps", "server").stdout.splitlines()[1:]
    assert len(processes) >= 2, processes  # gunicorn's master and its workers


def test_no_image_keeps_the_ca_bundle_it_was_built_with(node):
    # pip in the build trusted this machine's bundle, whose certificates of its own (a
    # proxy's) are added from /usr/local/share/ca-certificates: it was a build secret, and
    # no file of an image holds any of them.
    local = Path("/usr/local/share/ca-certificates")
    lines = [
        re.search(r"-----BEGIN CERTIFICATE-----\n(.+)\n", cert.read_text())[1]
        for cert in sorted(local.rglob("*.crt"))
    ]
    if not lines:
        pytest.skip(f"this machine trusts no certificate of its own ({local} is empty)")
    patterns = " ".join(f"-e '{line}'" for line in lines)
    for image in ("monitor", "monitor-api"):
        found = node.run(
            f"localhost/cloudmon/{image}:{VERSION}",
            f"ca-{image}",
            "sh",
            "-c",
            f"grep -rlF {patterns} / --exclude-dir=proc --exclude-dir=sys 2>/dev/null; true",
        )
        assert found.stdout == "", f"{image} holds this machine's own CA certificates"
