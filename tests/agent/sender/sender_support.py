"""Test support for the sender: a real ingest server on 127.0.0.1 that records what it is sent,
a clock moved by hand and payloads to send."""

import gzip
import http.server
import json
import ssl
import threading
from collections.abc import Callable


def payload(timestamp: float, **extra) -> bytes:
    """An encoded payload: enough of schema 1 for the sender, which never looks inside."""
    return json.dumps(
        {"schema": 1, "node": "worker-1", "timestamp": timestamp, **extra},
        separators=(",", ":"),
    ).encode()


class FakeClock:
    """A monotonic clock that only moves when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Request:
    """One POST as the server saw it."""

    def __init__(self, path: str, headers, raw: bytes, items: list[dict], status: int) -> None:
        self.path = path
        self.headers = headers
        self.raw = raw
        self.items = items
        self.status = status


# (items, headers) -> (status, extra headers[, JSON answer]); the default accepts everything.
Responder = Callable[[list[dict], dict], tuple]


class IngestServer:
    """A threaded HTTP server that gunzips bodies, answers by `responder` and keeps the
    payloads it accepted; stop() refuses connections, start() listens again on the same port."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.requests: list[Request] = []
        self.accepted: list[dict] = []
        self.responder: Responder = lambda items, headers: (200, {})
        self.script: list[int | tuple[int, dict]] = []
        self.on_request: Callable[[], None] | None = None
        self.port = 0
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                parsed = json.loads(raw)
                items = parsed if isinstance(parsed, list) else [parsed]
                status, extra, *answer = server.answer(items, dict(self.headers))
                with server._lock:
                    server.requests.append(
                        Request(self.path, dict(self.headers), raw, items, status)
                    )
                    if 200 <= status < 300:
                        server.accepted.extend(items)
                if server.on_request is not None:
                    server.on_request()
                if not answer:
                    answer = [{} if status < 300 else {"error": f"status {status}"}]
                body = json.dumps(answer[0]).encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    def answer(self, items: list[dict], headers: dict) -> tuple:
        """The scripted answer if one is queued, else the responder's."""
        if self.script:
            step = self.script.pop(0)
            return step if isinstance(step, tuple) else (step, {})
        return self.responder(items, headers)

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def timestamps(self) -> list[float]:
        return [item["timestamp"] for item in self.accepted]

    def __enter__(self) -> "IngestServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
