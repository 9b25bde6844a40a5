"""The `cloudmon` command line and `make run`, run for real."""

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from fixtures.cases import CASES
from fixtures.nodebuilder import build

ROOT = Path(__file__).resolve().parents[1]
CLOUDMON = [sys.executable, "-m", "cloudmon"]
# `make run`, without bringing the venv and the dashboard's assets up to date first.
MAKE_RUN = [
    "make",
    "-o",
    ".venv/.installed",
    "-o",
    "src/cloudmon/dashboard/static/uPlot.iife.min.js",
    "run",
]


def test_version_is_the_package_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = subprocess.run([*CLOUDMON, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout == f"cloudmon, version {version}\n"


def test_agent_once_says_what_it_does(tmp_path):
    node = build(CASES["v2-kind"](), tmp_path / "node")
    done = subprocess.run(
        [*CLOUDMON, "agent", "--once", "--gap", "0.2", "--output", "-", "--metadata", "none"]
        + ["--proc-root", node.proc_root, "--cgroup-root", node.cgroup_root]
        + ["--rootfs", node.rootfs, "--node-name", "fixture-node"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "monitoring node fixture-node" in done.stderr
    assert "once, from two samples 0.2 s apart" in done.stderr
    assert "every" not in done.stderr


def make_run(port: int, seconds: float = 30) -> tuple[int, str, float]:
    """`make run PORT=port`: its status, standard error and how long it took."""
    started = time.monotonic()
    # A session of its own: whatever it starts is stopped with it, should it not end.
    process = subprocess.Popen(
        [*MAKE_RUN, f"PORT={port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"make run PORT={port} was still running after {seconds} s")
    return process.returncode, stderr, time.monotonic() - started


def test_make_run_fails_at_once_when_the_port_is_taken():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        status, stderr, seconds = make_run(port)
    assert status != 0
    assert f"port {port} is taken" in stderr
    assert f"make run PORT={port + 1}" in stderr
    assert seconds < 5


def test_make_run_fails_when_the_server_exits():
    # A port bound but not listening: nothing answers on it, and the server cannot bind it.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        status, stderr, _ = make_run(port)
    assert status != 0
    assert f"the server on port {port} exited" in stderr
