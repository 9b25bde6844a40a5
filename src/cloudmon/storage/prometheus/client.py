"""The HTTP client of the engine: remote-write POSTs (framed by `remote_write`, retried with
backoff), instant and range queries and series look-ups through its HTTP API, over keep-alive
connections with TLS and basic or bearer auth; an answer the engine gives as an error is an
`EngineError`. It knows nothing of cloudmon's series: `encoder` makes what it writes, `promql`
what it asks, and `reader` makes sense of the answers. The clock (now, for `ping`) and the
sleep between retries are injected.
"""

import base64
import http.client
import ssl
import threading
import time
import urllib.parse

import msgspec

from cloudmon.storage.base import EngineError
from cloudmon.storage.prometheus import remote_write

MAX_STEPS = 10_000  # per query_range: Prometheus refuses more than 11,000 points a series


class Endpoint:
    """One base URL of the engine over keep-alive connections, one per thread."""

    def __init__(self, url: str, headers: dict[str, str], context, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r}: expected http://HOST[:PORT][/PATH] or https://...")
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port
        self.path = parts.path.rstrip("/")
        self.headers = headers
        self.context = context
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.https:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.context
                )
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]):
        """(status, body) of one request; a connection the engine closed is reopened once."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, self.path + path, body, {**self.headers, **headers})
                answer = conn.getresponse()
                return answer.status, answer.read()
            except (http.client.HTTPException, ConnectionError) as error:
                conn.close()
                if attempt == 2 or not isinstance(
                    error, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                ):
                    raise
            except OSError:
                conn.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class EngineClient:
    """The engine's read endpoint (the base of /api/v1/query) and write endpoint (remote
    write), which engines such as VictoriaMetrics's cluster split."""

    def __init__(
        self,
        read_url: str,
        write_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        bearer_token: str | None = None,
        ca_file: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        clock=time.time,
        sleep=time.sleep,
    ) -> None:
        headers = {}
        if bearer_token is not None:
            headers["Authorization"] = f"Bearer {bearer_token}"
        elif username is not None:
            credentials = f"{username}:{password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        context = ssl.create_default_context(cafile=ca_file)
        self.read_endpoint = Endpoint(read_url, headers, context, timeout)
        self.write_endpoint = Endpoint(write_url, headers, context, timeout)
        self.retries = retries
        self._clock = clock
        self._sleep = sleep

    def write(self, request: bytes) -> None:
        """POST a serialized WriteRequest (the engine appends it whole or not at all),
        retried on connection errors, 5xx and 429 after 0.1 s, 0.2 s, ...; OSError(EAGAIN)
        when the engine does not take it in the end, EngineError when it refuses it as bad."""
        body = remote_write.compress(request)
        delay = 0.1
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                status, answer = self.write_endpoint.request("POST", "", body, remote_write.HEADERS)
            except OSError as error:
                if last:
                    raise OSError(11, f"the engine is unreachable: {error}") from error
            else:
                if status < 300:
                    return
                message = answer.decode(errors="replace").strip()
                if status != 429 and status < 500:
                    raise EngineError(status, message)
                if last:
                    raise OSError(11, f"the engine refused the write: HTTP {status} {message}")
            self._sleep(delay)
            delay *= 2

    def _query(self, path: str, form: dict[str, str]):
        body = urllib.parse.urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, answer = self.read_endpoint.request("POST", path, body, headers)
        try:
            decoded = msgspec.json.decode(answer)
        except msgspec.DecodeError:
            raise EngineError(status, answer[:200].decode(errors="replace")) from None
        if status >= 300 or decoded.get("status") != "success":
            raise EngineError(status, decoded.get("error", "no error given"))
        return decoded["data"]

    def instant(self, expression: str, at: float) -> list[dict]:
        """The result of an instant query at `at` (unix seconds)."""
        # nocache=1: VictoriaMetrics would otherwise evaluate a time within its latency
        # offset (at least 1 s in 1.79) of its clock at that offset before its clock.
        form = {"query": expression, "time": f"{at:.3f}", "nocache": "1"}
        return self._query("/api/v1/query", form)["result"]

    def range_query(
        self, expression: str, start: int, end: int, step: int, steps: int = MAX_STEPS
    ) -> list[dict]:
        """The result of a range query, its series merged over chunks of `steps` steps."""
        merged: dict[tuple, dict] = {}
        for first in range(start, end + 1, step * steps):
            last = min(end, first + step * (steps - 1))
            form = {"query": expression, "start": str(first), "end": str(last), "step": str(step)}
            for item in self._query("/api/v1/query_range", form)["result"]:
                key = tuple(sorted(item["metric"].items()))
                if key in merged:
                    merged[key]["values"] += item["values"]
                else:
                    merged[key] = item
        return list(merged.values())

    def find_series(self, match: str, start: int, end: int) -> list[dict[str, str]]:
        """The labels of the series matching a selector with samples in [start, end], from
        the engine's index (/api/v1/series)."""
        return self._query(
            "/api/v1/series", {"match[]": match, "start": str(start), "end": str(end)}
        )

    def ping(self) -> None:
        """A trivial query, now: raises if the engine does not answer it."""
        self.instant("vector(1)", self._clock())

    def close(self) -> None:
        """Close every connection."""
        self.read_endpoint.close()
        self.write_endpoint.close()
