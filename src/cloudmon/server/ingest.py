"""POST /api/ingest: payloads validated whole, stored whole, answered after they are stored."""

import time
import zlib

import msgspec
from flask import Blueprint, current_app, request

from cloudmon import payload as wire
from cloudmon.server import auth
from cloudmon.server.errors import ApiError
from cloudmon.server.state import state
from cloudmon.storage.base import BUCKET

bp = Blueprint("ingest", __name__)

_CHUNK = 64 * 1024
FUTURE_LIMIT = 3600  # seconds a payload's timestamp may lie ahead of the server's clock


def read_body(stream, limit: int) -> bytes:
    """At most `limit` bytes of a request body; 413 past it."""
    chunks, size = [], 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body: larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body decompressed, refusing output past `limit` bytes (413) and bad gzip (400)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise ApiError(400, f"body: not valid gzip ({error})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ApiError(413, f"body: larger than the limit of {limit} bytes after decompression")
    if not inflater.eof:
        raise ApiError(400, "body: gzip stream is truncated")
    if inflater.unused_data:
        raise ApiError(400, "body: data after the end of the gzip stream")
    return out


def decode(body: bytes, now: float, oldest: float = 0.0) -> list:
    """Payloads from a JSON body, checked beyond the schema; raises ApiError (400)."""
    try:
        payloads = wire.decode(body)
    except msgspec.ValidationError as error:
        raise ApiError(400, f"payload: {error}") from None
    except msgspec.DecodeError as error:
        raise ApiError(400, f"body: not valid JSON ({error})") from None
    except RecursionError:
        raise ApiError(400, "body: JSON nested too deeply") from None
    if not payloads:
        raise ApiError(400, "body: an empty array holds no payload")
    is_array = body.lstrip()[:1] == b"["
    for index, item in enumerate(payloads):
        where = f"$[{index}]" if is_array else "$"
        if item.timestamp > now + FUTURE_LIMIT:
            raise ApiError(400, f"payload: timestamp lies in the future - at `{where}.timestamp`")
        # Older samples could no longer be rolled up with the rest of their period.
        if item.timestamp < oldest:
            raise ApiError(
                400, f"payload: timestamp is older than the raw retention - at `{where}.timestamp`"
            )
        seen = set()
        for number, pod in enumerate(item.pods):
            if pod.uid in seen:
                raise ApiError(400, f"payload: duplicate pod uid - at `{where}.pods[{number}].uid`")
            seen.add(pod.uid)
    return payloads


@bp.post("/api/ingest")
def ingest():
    """Store one payload or an array of them."""
    started = time.perf_counter()
    config = current_app.config
    auth.require(config["CLOUDMON_TOKEN"])
    if request.mimetype != "application/json":
        raise ApiError(415, f"Content-Type: {request.mimetype or 'none'} is not application/json")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, f"Content-Encoding: {encoding} is not supported (gzip or none)")
    limit = config["CLOUDMON_MAX_BODY"]
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"body: larger than the limit of {limit} bytes")
    body = read_body(request.stream, limit)
    if encoding == "gzip":
        body = gunzip(body, limit)
    now = config["CLOUDMON_NOW"]()
    payloads = decode(body, now, now - config["CLOUDMON_RETENTION"][BUCKET])
    samples = state().storage.write(payloads)
    state().ingested(len(payloads), samples, time.perf_counter() - started)
    return {"payloads": len(payloads), "samples": samples}
