"""POST /api/ingest: payloads validated whole, stored whole, answered after they are stored.

It is served by a plain WSGI layer in front of Flask (`IngestApp`): ingest is the one hot
path, and Flask's request handling costs about as much as storing a payload's node row."""

import errno
import logging
import threading
import time
from http import HTTPStatus

import msgspec
from flask import Blueprint, current_app, request
from isal import isal_zlib

from cloudmon import payload as wire
from cloudmon.server import auth
from cloudmon.server.errors import ApiError, engine_error
from cloudmon.server.state import state
from cloudmon.storage.base import BUCKET, EngineError

log = logging.getLogger(__name__)
bp = Blueprint("ingest", __name__)

PATH = "/api/ingest"
_CHUNK = 64 * 1024
# Seconds a payload's timestamp may lie ahead of the server's clock. An agent stamps a
# sample when it reads it and sends it at once, so a working clock never comes near this;
# more would let one node's future buckets stand for the cluster's "now".
SKEW_TOLERANCE = 30
# Seconds an agent is asked to wait when the store's disk is full or too many writes wait.
RETRY_AFTER = {errno.ENOSPC: "30", errno.EAGAIN: "5"}
ARRIVED = "cloudmon.arrived"  # environ: time.monotonic() when the request became readable
BODY_READ = "cloudmon.body_read"  # environ: the request's body was read
MAX_WAIT = 1.0  # seconds a request may wait for a worker's thread before it is shed


def read_body(stream, limit: int, length: int | None = None) -> bytes:
    """At most `limit` bytes of a request body (`length` when known); 413 past it."""
    if length is not None:
        body = stream.read(length)
        if len(body) < length:
            raise ApiError(400, "body: shorter than its Content-Length")
        return body
    chunks, size = [], 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body: larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def drain(environ: dict, limit: int) -> None:
    """Read and drop the body of a request refused before its body was read, up to its
    Content-Length (or, without one, its end) and at most `limit` bytes: a client still
    sending when the answer comes is answered, not cut off (BrokenPipe) when the connection
    closes behind it."""
    if environ.get(BODY_READ):
        return
    left = limit
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            left = min(int(length), limit)
        except ValueError:
            return
    stream = environ["wsgi.input"]
    while left > 0 and (chunk := stream.read(min(_CHUNK, left))):
        left -= len(chunk)


def gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body decompressed, refusing output past `limit` bytes (413) and bad gzip (400)."""
    inflater = isal_zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, limit + 1)
    except isal_zlib.error as error:
        raise ApiError(400, f"body: not valid gzip ({error})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ApiError(413, f"body: larger than the limit of {limit} bytes after decompression")
    if not inflater.eof:
        raise ApiError(400, "body: gzip stream is truncated")
    if inflater.unused_data:
        raise ApiError(400, "body: data after the end of the gzip stream")
    return out


def decode(body: bytes, now: float, oldest: float = 0.0) -> tuple[list, list[str]]:
    """Payloads from a JSON body, checked beyond the schema, each with the node's clock skew
    measured, and the fields this version ignores; raises ApiError (400)."""
    try:
        payloads, ignored = wire.decode_reporting(body)
    except msgspec.ValidationError as error:
        raise ApiError(400, f"payload: {error}") from None
    except msgspec.DecodeError as error:
        raise ApiError(400, f"body: not valid JSON ({error})") from None
    except RecursionError:
        raise ApiError(400, "body: JSON nested too deeply") from None
    except UnicodeDecodeError as error:  # msgspec decodes strings as UTF-8 and raises this
        raise ApiError(400, f"body: not valid UTF-8 at byte {error.start}") from None
    if not payloads:
        raise ApiError(400, "body: an empty array holds no payload")
    is_array = body.lstrip()[:1] == b"["
    for index, item in enumerate(payloads):
        where = f"$[{index}]" if is_array else "$"
        skew = None if item.sent_at is None else round(item.sent_at - now, 3)
        item.node_metrics.clock_skew_seconds = skew
        ahead = item.timestamp - now
        if ahead > SKEW_TOLERANCE:
            raise ApiError(
                400,
                f"payload: timestamp lies {ahead:.0f} s ahead of the server's clock (at most "
                f"{SKEW_TOLERANCE} s): the clock of node {item.node} is off - at "
                f"`{where}.timestamp`",
                details={"clock_skew_seconds": ahead if skew is None else skew},
            )
        # Older samples could no longer be rolled up with the rest of their period.
        if item.timestamp < oldest:
            raise ApiError(
                400, f"payload: timestamp is older than the raw retention - at `{where}.timestamp`"
            )
        if len({pod.uid for pod in item.pods}) < len(item.pods):
            seen = set()
            for number, pod in enumerate(item.pods):
                if pod.uid in seen:
                    raise ApiError(
                        400, f"payload: duplicate pod uid - at `{where}.pods[{number}].uid`"
                    )
                seen.add(pod.uid)
    return payloads, ignored


class _DiskFull:
    """The store's full disk, logged when ingest first meets it and when it stores again,
    not at every request refused meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self._refused = 0

    def began(self, error: OSError) -> None:
        """A request refused for it; logged if it is the first."""
        with self._lock:
            self._refused += 1
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning("ingest refused until there is space: %s", error)

    def ended(self) -> None:
        """A request stored; logs the end of the condition if it held."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            lasted, refused = time.monotonic() - self._since, self._refused
            self._since, self._refused = None, 0
        log.warning("ingest stores again after %.0f s of a full disk (%d refused)", lasted, refused)


_disk_full = _DiskFull()


def store(environ: dict, config, server) -> dict:
    """Validate and store one ingest request; raises ApiError for bad input."""
    started = time.perf_counter()
    arrived = environ.get(ARRIVED)
    if arrived is not None and time.monotonic() - arrived > MAX_WAIT:
        raise ApiError(
            503,
            f"server: overloaded, the request waited over {MAX_WAIT:.0f} s; retry later",
            {"Retry-After": RETRY_AFTER[errno.EAGAIN]},
        )
    auth.check(environ.get("HTTP_AUTHORIZATION", ""), config["CLOUDMON_TOKEN"])
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if mimetype != "application/json":
        raise ApiError(415, f"Content-Type: {mimetype or 'none'} is not application/json")
    encoding = environ.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, f"Content-Encoding: {encoding} is not supported (gzip or none)")
    limit = config["CLOUDMON_MAX_BODY"]
    length = environ.get("CONTENT_LENGTH")
    try:
        length = int(length) if length else None
    except ValueError:
        raise ApiError(400, "Content-Length: not a number") from None
    if length is not None and length > limit:
        raise ApiError(413, f"body: larger than the limit of {limit} bytes")
    body = read_body(environ["wsgi.input"], limit, length)
    environ[BODY_READ] = True
    if encoding == "gzip":
        body = gunzip(body, limit)
    now = config["CLOUDMON_NOW"]()
    payloads, ignored = decode(body, now, now - config["CLOUDMON_RETENTION"][BUCKET])
    try:
        samples = server.storage.write(payloads)
    except EngineError as error:
        raise engine_error(error) from None
    except OSError as error:
        if error.errno not in RETRY_AFTER:
            raise
        if error.errno == errno.ENOSPC:
            _disk_full.began(error)
        raise ApiError(
            503,
            f"storage: {error.strerror}; retry later",
            {"Retry-After": RETRY_AFTER[error.errno]},
        ) from None
    _disk_full.ended()
    server.ingested(len(payloads), samples, time.perf_counter() - started, ignored)
    return {"payloads": len(payloads), "samples": samples, "ignored_fields": ignored}


class IngestApp:
    """WSGI middleware answering POST /api/ingest itself and passing the rest to Flask."""

    def __init__(self, flask_app, server) -> None:
        self.config = flask_app.config
        self.server = server
        self.rest = flask_app.wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.rest(environ, start_response)
        headers = {}
        try:
            status, answer = 200, store(environ, self.config, self.server)
        except ApiError as error:
            status, answer, headers = error.status, error.answer(), error.headers
        except Exception:
            log.exception("unexpected error")
            status, answer = 500, {"error": "internal error; see the server's log"}
        if status != 200:
            self.server.rejected.labels(PATH, str(status)).inc()
            drain(environ, self.config["CLOUDMON_MAX_BODY"])
        body = msgspec.json.encode(answer)
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                *headers.items(),
            ],
        )
        return [body]


@bp.post(PATH)
def ingest():
    """Store one payload or an array of them (answered by IngestApp in front of Flask)."""
    return store(request.environ, current_app.config, state())
