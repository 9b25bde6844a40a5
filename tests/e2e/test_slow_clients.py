"""A client that sends its request slowly, or stops halfway, is cut off at the server's
request time limit, and the same worker serves other requests meanwhile; connections opened
ahead of need, sending nothing, hold no request back."""

import contextlib
import http.client
import socket
import time

import pytest
from fixtures.servers import ServerProcess, get_json, node_payload, post_ingest

LIMIT = 4.0  # seconds
# The server checks its requests' deadlines every quarter of the limit; past that, 2 s for a
# busy machine's delays: less than the limit again, so a server that cuts off at twice the
# limit fails. A slow client not cut off at all holds its thread for minutes.
CUT_OFF_BY = LIMIT * 1.25 + 2.0
# Seconds between requests on a kept-alive connection: well within gunicorn's keepalive
# (2 s by default), after which it closes an idle connection whatever the time limit.
IDLE = 0.2


# gunicorn's own wait for a new connection's first request, in the worker's thread.
GUNICORN_WAIT = 5.0


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
    answered = []  # seconds from `started` to each answer another client had meanwhile
    for byte in body:
        try:
            trickling.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        # Meanwhile another client's requests are answered.
        assert get_json(server.url + "/healthz") == {"status": "ok"}
        answered.append(time.monotonic() - started)
        if answered[-1] > CUT_OFF_BY:
            pytest.fail("the server read the trickling body for longer than its time limit")
        time.sleep(0.2)
    else:
        pytest.fail("the server read the whole trickling body")
    trickled_for = time.monotonic() - started
    trickling.close()
    stalled_for = _closed_after(stalled, started)
    # Both arrived after `started`: the server cannot cut them off sooner than the limit.
    assert LIMIT <= trickled_for < CUT_OFF_BY
    assert LIMIT <= stalled_for < CUT_OFF_BY
    # So answers before the limit came while both held their threads.
    assert [seconds for seconds in answered if seconds < LIMIT], answered

    status, _, answer = post_ingest(server.url, body)
    assert status == 200, answer
    assert get_json(server.url + "/api/nodes")["items"][0]["node"] == "fast"
    assert server.log_path.read_text().count("cut off a request from 127.0.0.1") == 2


def test_a_request_answered_in_time_keeps_its_connection(server):
    """The time limit is each request's, from its arrival: a kept-alive connection serves
    request after request for well over the limit."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    sockets = set()
    opened = time.monotonic()
    try:
        while time.monotonic() - opened < 2 * LIMIT:
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            assert answer.status == 200
            answer.read()
            sockets.add(connection.sock)
            time.sleep(IDLE)  # idle between requests: kept alive, not cut off
    finally:
        connection.close()
    assert len(sockets) == 1
    assert "cut off" not in server.log_path.read_text()


def test_connections_that_send_nothing_hold_no_request_back(tmp_path):
    """A browser opens connections speculatively, and may send nothing on them for seconds:
    with the default one thread a worker, no request waits behind one, and one that sends its
    request a little later is answered."""
    server = ServerProcess(tmp_path)
    server.run_server(storage=f"sqlite:///{tmp_path}/cloudmon.db", workers=1, threads=1)
    server.start()
    try:
        with _connect(server.url), _connect(server.url) as late:
            time.sleep(0.1)  # both accepted by the worker before the requests below
            late.sendall(b"GET /healthz HTTP/1.1\r\nHost: cloudmon\r\nConnection: close\r\n\r\n")
            waits = []
            for _ in range(5):
                started = time.monotonic()
                assert get_json(server.url + "/healthz") == {"status": "ok"}
                waits.append(time.monotonic() - started)
            # Held back, the first waits GUNICORN_WAIT for the idle connection.
            assert max(waits) < GUNICORN_WAIT / 2, waits
            with late.makefile("rb") as answer:
                assert answer.read().startswith(b"HTTP/1.1 200 ")
    finally:
        server.stop()
