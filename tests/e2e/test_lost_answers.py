"""A proxy that loses the server's answers after the server stored the payload: the agent
sends again, and nothing is counted twice."""

import os
import socket
import subprocess
import sys
import threading
import time

from fixtures.cases import CASES
from fixtures.crictl import FAKE_CRICTL, write_crictl_spec
from fixtures.nodebuilder import build
from fixtures.servers import get_json, running_server


def _read_message(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message (headers and a Content-Length body) from the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


class AnswerLosingProxy:
    """Forwards each request to the server and, for the first `lose` of them, closes the
    client's connection instead of passing the server's answer on."""

    def __init__(self, server_port: int, lose: int):
        self.server_port = server_port
        self.lose = lose
        self.forwarded = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with client, socket.create_connection(("127.0.0.1", self.server_port)) as upstream:
                request = _read_message(client)
                if not request:
                    continue
                upstream.sendall(request)
                answer = _read_message(upstream)
                self.forwarded += 1
                if self.forwarded > self.lose:
                    client.sendall(answer)

    def close(self) -> None:
        self.listener.close()


def test_lost_answers_never_double_count(tmp_path):
    spec = CASES["v2-systemd-containerd"]()
    node = build(spec, tmp_path / "node")
    crictl_spec = write_crictl_spec(tmp_path / "crictl.json", spec, node)
    shop = [pod for pod in spec.pods if pod.namespace == "shop"]
    assert shop
    (tmp_path / "data").mkdir()
    with running_server(tmp_path / "data") as base:
        proxy = AnswerLosingProxy(int(base.rsplit(":", 1)[1]), lose=3)
        agent = subprocess.Popen(
            [sys.executable, "-m", "cloudmon", "agent", "--interval", "1", "--node-name", "n1"]
            + ["--server", f"http://127.0.0.1:{proxy.port}", "--metadata", "crictl"]
            + ["--crictl", str(FAKE_CRICTL), "--proc-root", node.proc_root]
            + ["--cgroup-root", node.cgroup_root, "--rootfs", node.rootfs],
            env={**os.environ, "FAKE_CRICTL_SPEC": str(crictl_spec)},
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while proxy.forwarded < 8:
                assert time.monotonic() < deadline, "the agent did not send again"
                time.sleep(0.1)
        finally:
            agent.terminate()
            agent.wait()
            proxy.close()
        answer = get_json(f"{base}/api/namespaces/shop?window=5m&step=10s&agg=max")
        node_answer = get_json(f"{base}/api/nodes/n1?window=5m&step=10s&agg=max")
    working_set = sum(pod.memory_current - pod.inactive_file for pod in shop)
    stored = [v for v in answer["series"]["memory_working_set_bytes"] if v is not None]
    assert stored, "nothing was stored"
    assert set(stored) == {working_set}
    assert {v for v in answer["series"]["pod_count"] if v is not None} == {len(shop)}
    pods_seen = {v for v in node_answer["series"]["pod_count"] if v is not None}
    assert pods_seen == {len(spec.pods)}
