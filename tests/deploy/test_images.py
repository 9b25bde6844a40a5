"""The Dockerfile, and its images' entry points in a venv built the way the Dockerfile builds it.

No container engine runs here, so the images themselves are not built; the test repeats the
Dockerfile's steps: the build context (.dockerignore's pyproject.toml, README.md and src/) made
into a wheel, the wheel installed into a fresh venv without pip, and the entry points run.
"""

import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

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


def test_entry_points_in_a_venv_built_like_the_image(tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(
        ROOT / "src", context / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    # Offline: no build isolation and no dependencies fetched (the Dockerfile fetches them).
    subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            str(context),
        ],
        check=True,
        timeout=120,
    )
    (wheel,) = wheels.glob("cloudmon-*.whl")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-index", "--no-deps", str(wheel)],
        check=True,
        timeout=120,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies come from this interpreter's site-packages, after the venv's own.
    (Path(site) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = subprocess.run(
        [str(python), "-c", "import cloudmon; print(cloudmon.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(site), "cloudmon must come from the installed wheel"
    cloudmon = str(venv / "bin" / "cloudmon")

    agent = subprocess.run(
        [cloudmon, "agent", "--help"], capture_output=True, text=True, timeout=60
    )
    assert agent.returncode == 0, agent.stderr
    assert "--server" in agent.stdout and "CLOUDMON" not in agent.stderr

    port = free_port()
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    command = [
        cloudmon,
        "server",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--storage=sqlite:///{tmp_path}/data/cloudmon.db",
        f"--token-file={token}",
    ]
    (tmp_path / "data").mkdir()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert get(f"http://127.0.0.1:{port}/healthz") == 200
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "no answer on /healthz within 30 s"
                time.sleep(0.2)
        assert get(f"http://127.0.0.1:{port}/readyz") == 200
    finally:
        server.terminate()
        server.communicate(timeout=20)
