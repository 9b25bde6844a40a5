"""A loopback HTTPS server answering like the API server and the kubelet, for tests."""

import http.server
import json
import queue
import socket
import ssl
import threading
import urllib.parse

END = "END"  # a watch step: the server closes the stream (as at timeoutSeconds)


def status(code: int, reason: str, message: str) -> dict:
    """A metav1.Status object as the API server sends with errors."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class KubeServer(http.server.ThreadingHTTPServer):
    """Serves /api/v1/pods (list and watch), /pods, ReplicaSet and Job GETs over TLS."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, tls: ssl.SSLContext, address: tuple[str, int] = ("127.0.0.1", 0)):
        super().__init__(address, _Handler)
        self.tls = tls
        self.token = "token-1"
        self.pods: list[dict] = []
        self.resource_version = "100"
        self.objects: dict[str, dict] = {}  # path -> object (ReplicaSets, Jobs)
        self.watch_steps: queue.Queue = queue.Queue()
        self.watch_idle_seconds = 0.3
        self.list_status: int | None = None  # answer lists with this error status
        self.on_unauthorized = None  # called when a request has the wrong token
        self.requests: list[str] = []
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def get_request(self):
        sock, address = self.socket.accept()
        # The handshake happens in the handler's thread, so a bad client blocks nobody.
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        pass  # clients that reject our certificate or hang up are part of the tests

    def start(self) -> "KubeServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def watch(self, *steps) -> None:
        """Queue watch steps: event dicts, {"http_status": code}, or END."""
        for step in steps:
            self.watch_steps.put(step)

    def pod_list(self) -> dict:
        return {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": self.resource_version},
            "items": self.pods,
        }

    def count(self, prefix: str) -> int:
        return sum(1 for request in self.requests if request.startswith(prefix))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: KubeServer

    def log_message(self, format, *args):
        pass

    def _send_json(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        if self.headers.get("Authorization") != f"Bearer {server.token}":
            if server.on_unauthorized is not None:
                server.on_unauthorized()
            self._send_json(401, status(401, "Unauthorized", "Unauthorized"))
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/api/v1/pods" and query.get("watch") == ["true"]:
            self._watch()
        elif url.path in ("/api/v1/pods", "/pods"):
            if server.list_status is not None:
                self._send_json(server.list_status, status(server.list_status, "Error", "no"))
            else:
                self._send_json(200, server.pod_list())
        elif url.path in server.objects:
            self._send_json(200, server.objects[url.path])
        else:
            self._send_json(404, status(404, "NotFound", f"{url.path} not found"))

    def _watch(self):
        server = self.server
        try:
            step = server.watch_steps.get(timeout=server.watch_idle_seconds)
        except queue.Empty:
            step = END
        if isinstance(step, dict) and "http_status" in step:
            code = step["http_status"]
            self._send_json(code, status(code, "Expired", "too old resource version"))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while step != END and not server.stopping.is_set():
                self._chunk(json.dumps(step).encode() + b"\n")
                try:
                    step = server.watch_steps.get(timeout=server.watch_idle_seconds)
                except queue.Empty:
                    step = END
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True


class SilentServer:
    """Accepts TCP connections and never says a word (no TLS handshake, no answer)."""

    def __init__(self):
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.url = f"https://127.0.0.1:{self._socket.getsockname()[1]}"

    def close(self) -> None:
        self._socket.close()


def main(objects: str, certificate: str, host: str, port: str) -> None:
    """Serve, until killed, the pods and objects (ReplicaSets, Jobs) of a JSON file
    ({"pods": [...], "objects": {path: object}}) at host:port, with a certificate (its key and
    chain in one PEM file); run where the clients are, e.g. in a node's network namespace."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certificate)
    server = KubeServer(tls, (host, int(port)))
    with open(objects) as file:
        served = json.load(file)
    server.pods, server.objects = served["pods"], served["objects"]
    server.watch_idle_seconds = 30
    server.serve_forever()


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:])
