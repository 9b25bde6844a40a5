"""A client that sends its request slowly, or stops halfway, is cut off at the server's
request time limit, and the same worker serves other requests meanwhile."""

import contextlib
import http.client
import socket
import time

import pytest
from fixtures.servers import ServerProcess, get_json, node_payload, post_ingest

LIMIT = 2.0  # seconds


@pytest.fixture
def server(tmp_path):
    # One worker: the slow clients and the others share its threads.
    server = ServerProcess(tmp_path)
    server.run_server(
        storage=f"sqlite:///{tmp_path}/cloudmon.db",
        workers=1,
        threads=4,
        request_time_limit=LIMIT,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def _closed_after(sock: socket.socket, started: float) -> float:
    """Seconds from `started` until the server closes the connection without answering."""
    with sock, contextlib.suppress(ConnectionResetError):
        assert sock.recv(4096) == b"", "the server answered instead of cutting off"
    return time.monotonic() - started


def test_slow_and_stalled_clients_are_cut_off_while_others_are_served(server):
    body = node_payload("fast", time.time(), pods=5, namespace="slow")
    started = time.monotonic()
    # Headers begun and never finished.
    stalled = _connect(server.url)
    stalled.sendall(b"POST /api/ingest HTTP/1.1\r\nHost: cloudmon\r\nContent-Type: appl")
    # A whole header, then its body a byte every 0.2 s: it would take minutes.
    trickling = _connect(server.url)
    trickling.sendall(
        b"POST /api/ingest HTTP/1.1\r\nHost: cloudmon\r\nContent-Type: application/json\r\n"
        b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    served = []
    for byte in body[: int(LIMIT / 0.2) + 10]:
        try:
            trickling.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        # Meanwhile another client's requests are answered at once.
        asked = time.monotonic()
        assert get_json(server.url + "/healthz") == {"status": "ok"}
        served.append(time.monotonic() - asked)
        time.sleep(0.2)
    else:
        pytest.fail("the server read the trickling body for longer than its time limit")
    trickled_for = time.monotonic() - started
    trickling.close()
    stalled_for = _closed_after(stalled, started)
    assert LIMIT <= trickled_for < LIMIT + 2.5
    assert LIMIT <= stalled_for < LIMIT + 2.5
    assert max(served) < 1.0, served

    status, _, answer = post_ingest(server.url, body)
    assert status == 200, answer
    assert get_json(server.url + "/api/nodes")["items"][0]["node"] == "fast"
    assert server.log_path.read_text().count("cut off a request from 127.0.0.1") == 2


def test_a_request_answered_in_time_keeps_its_connection(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    sockets = set()
    try:
        for _ in range(3):
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            assert answer.status == 200
            answer.read()
            sockets.add(connection.sock)
            time.sleep(LIMIT * 0.75)  # idle between requests: kept alive, not cut off
    finally:
        connection.close()
    assert len(sockets) == 1
    assert "cut off" not in server.log_path.read_text()
