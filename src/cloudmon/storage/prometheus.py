"""A Prometheus-compatible engine as the store: written through remote-write 1.0, read
through PromQL (`/api/v1/query`, `/api/v1/query_range`). The server keeps no state of its
own, so any number of replicas answer alike.

A node's metric is the series `cloudmon_node_<metric>{node}`, a pod's
`cloudmon_pod_<metric>{namespace, pod, uid, node, deployment, workload_kind, workload}`, a
container's the pod's labels with `container` and `container_id`. Every report also writes
`cloudmon_<scope>_seen_timestamp_seconds`, the start of its bucket, with the entity's
descriptive labels (a node's kernel, a pod's qos, ...): it says when and where it reported.

A sample is written at its own time, but never on a bucket's boundary (at least 1 ms
after the bucket's start), so that a range `[b, b + 10 s]` holds bucket b alone whether the
engine includes the range's start (Prometheus 2) or not (Prometheus 3, VictoriaMetrics). A
second report of a bucket is a second sample in it and `last_over_time` picks the newer;
two reports at the same millisecond would be a duplicate, which Prometheus refuses.

Latest values are read as raw samples, a group's as its sums; series are folded by the
engine: `<agg>_over_time` over the step, of the per-bucket sums (a subquery at 10 s) for
namespaces, deployments and the cluster.
"""

import base64
import http.client
import itertools
import json
import math
import operator
import re
import ssl
import struct
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import msgspec

from cloudmon.storage import remote_write
from cloudmon.storage.base import (
    BUCKET,
    EngineError,
    Entity,
    Storage,
    as_latest,
    bucket_of,
    complete_bucket,
    fold,
    register,
)
from cloudmon.storage.model import (
    CONTAINER_COLUMNS,
    KINDS,
    NODE_COLUMNS,
    POD_COLUMNS,
    STORED_COLUMNS,
    EntityKind,
    columns,
    derive,
    node_row,
)

PREFIX = "cloudmon_"
AHEAD = 3600 + BUCKET  # seconds past the clock a sample may lie: ingest refuses later ones
HISTORY = 15 * 86400  # seconds looked back for entities without a time bound (Prometheus's
# default retention)
MAX_STEPS = 10_000  # per query_range: Prometheus refuses more than 11,000 points a series
# Per series, the points one query's 10 s subquery may compute, counted by VictoriaMetrics
# from 5 minutes before the range's window to a bucket past its end: 1.79 refuses more than
# 30,000 (-search.maxPointsPerTimeseries), 1.8x and later 100,000 (a flag of its own).
SUBQUERY_POINTS = 25_000
SUBQUERY_MARGIN = 300 + 2 * BUCKET
# For steps under a minute, VictoriaMetrics gives a range query's points from its
# -search.latencyOffset (at least 1 s in 1.79) before its clock to a step after it the value
# of the point before: the steps ending in that time, give or take RECENT seconds (the
# offset the overlay sets is 0 s, the clocks may differ), are asked for one by one.
RECENT = 5
# Characters of an expression: VictoriaMetrics refuses more than 16 KiB (-search.maxQueryLen).
MAX_QUERY = 15_000
# Seconds: a group's series over a longer span is asked for from the first bucket held.
LONG_SPAN = 31 * 86400
SCAN_SPAN = 3600  # seconds of reports a list reads whole (see `_last_seen`)
CACHE_LIMIT = 500_000  # encoded series heads kept before the cache starts afresh

_POD_LABELS = ("namespace", "pod", "uid", "node", "deployment", "workload_kind", "workload")
_CONTAINER_LABELS = (*_POD_LABELS, "container", "container_id")
_NODE_INFO = ("cpu_count", "memory_total_bytes", "kernel", "cgroup_version", "boot_time")
_INFO_TYPES = {"cpu_count": int, "memory_total_bytes": int, "cgroup_version": int}
_INFO_TYPES["boot_time"] = float

# Per kind (from the model): the scope of its series, the labels keying one entity, the
# identity fields (in IDENTITY's order) with the label each is read from, and the filters it
# takes as labels (a container's "key", its name or its ID, is handled by `entities`).
_SCOPE = {kind: str(spec.member) for kind, spec in KINDS.items()}
_KEY = {kind: tuple(spec.identity[f] for f in spec.key) for kind, spec in KINDS.items()}
_FIELDS = {kind: spec.identity for kind, spec in KINDS.items()}
_FILTERS = {
    kind: {name: spec.identity[field] for name, field in spec.filters.items()}
    for kind, spec in KINDS.items()
}
_GROUPS = tuple(kind for kind, spec in KINDS.items() if spec.group)
_OVER_TIME = {agg: f"{agg}_over_time" for agg in ("avg", "max", "min", "last", "sum")}


def metric_name(scope: str, name: str) -> str:
    """The series name of a metric of a scope (node, pod, container)."""
    return f"{PREFIX}{scope}_{name}"


def seen_name(scope: str) -> str:
    """The series saying when and with which labels an entity of a scope reported."""
    return f"{PREFIX}{scope}_seen_timestamp_seconds"


def quote(value: str) -> str:
    """A PromQL string literal."""
    return json.dumps(value)


def selector(
    name: str | None,
    matchers: dict[str, str],
    regex: dict[str, Iterable[str]] | None = None,
    required: Iterable[str] = (),
) -> str:
    """A PromQL series selector: exact matchers, labels that must be present, and
    regular-expression matchers taking any of the values given."""
    parts = [f"{label}={quote(value)}" for label, value in matchers.items()]
    parts += [f'{label}!=""' for label in required if label not in matchers]
    parts += [
        f"{label}=~{quote('|'.join(re.escape(value) for value in sorted(set(values))))}"
        for label, values in (regex or {}).items()
    ]
    return f"{name or ''}{{{','.join(parts)}}}"


def _duration(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"


def _number(text: str) -> float | None:
    value = float(text)
    return None if math.isnan(value) or math.isinf(value) else value


# -- writing ---------------------------------------------------------------------------

_DOUBLE = struct.Struct("<d")


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


class SeriesEncoder:
    """Encodes samples into a WriteRequest's bytes, each series' labels serialized by
    protobuf once and kept: a payload of 100 pods is some 2,000 series whose labels repeat
    in every payload, and building them as messages each time took 30 ms a payload."""

    def __init__(self) -> None:
        self._labels: dict[tuple[str, str], bytes] = {}
        self._entities: dict[tuple, dict[str, bytes]] = {}

    def add(self, parts: list, labels: tuple, tail: bytes, names: tuple, values: tuple) -> int:
        """Append to `parts` one TimeSeries field per name whose value is not None, each with
        the entity's labels (sorted by name, __name__ aside) and one sample of the timestamp
        field `tail`; returns how many."""
        key = (labels, len(tail))
        heads = self._entities.get(key)
        if heads is None:
            if len(self._entities) >= CACHE_LIMIT:
                self._entities.clear()
                self._labels.clear()
            # Under "": the entity's labels, which every series of it shares; under a series
            # name: its head; under a tuple of names: their heads and a Struct packing them
            # with their values at once (a tenth of the time of a series at a time).
            heads = self._entities[key] = {"": b"".join(self._label(*label) for label in labels)}
        if None not in values:
            packer = heads.get(names)
            if packer is None:
                packer = heads[names] = self._packer(heads, names, len(tail))
            struct_of_all, heads_of_all = packer
            parts.append(
                struct_of_all.pack(
                    *itertools.chain.from_iterable(
                        zip(heads_of_all, values, itertools.repeat(tail))
                    )
                )
            )
            return len(values)
        count = 0
        for name, value in zip(names, values, strict=True):
            if value is not None:
                head = heads.get(name) or self._head(heads, name, len(tail))
                parts += (head, _DOUBLE.pack(value), tail)
                count += 1
        return count

    def _packer(self, heads: dict, names: tuple, tail_size: int) -> tuple[struct.Struct, tuple]:
        of_all = tuple(heads.get(name) or self._head(heads, name, tail_size) for name in names)
        layout = "".join(f"{len(head)}sd{tail_size}s" for head in of_all)
        return struct.Struct("<" + layout), of_all

    def _head(self, heads: dict, name: str, tail_size: int) -> bytes:
        serialized = self._label("__name__", name) + heads[""]
        # Sample: 0x09 + 8-byte double (field 1) + the timestamp field; TimeSeries field 2
        # holds it, WriteRequest field 1 holds the TimeSeries.
        sample_size = 1 + 8 + tail_size
        body_size = len(serialized) + 1 + len(_varint(sample_size)) + sample_size
        head = b"".join(
            (b"\x0a", _varint(body_size), serialized, b"\x12", _varint(sample_size), b"\x09")
        )
        heads[name] = head
        return head

    def _label(self, name: str, value: str) -> bytes:
        field = self._labels.get((name, value))
        if field is None:
            label = remote_write.Label(name=name, value=value)
            field = remote_write.TimeSeries(labels=[label]).SerializeToString()
            self._labels[name, value] = field
        return field

    @staticmethod
    def timestamp_field(milliseconds: int) -> bytes:
        """A Sample's timestamp field (2, varint)."""
        return b"\x10" + _varint(milliseconds)


def sample_time(timestamp: float) -> int:
    """The millisecond a sample of this time is written at: its own, kept off the bucket's
    boundary."""
    bucket = bucket_of(timestamp)
    offset = min(max(int((timestamp - bucket) * 1000), 1), BUCKET * 1000 - 1)
    return bucket * 1000 + offset


def _pod_labels(pod, node: str, extra: tuple) -> tuple[tuple[str, str], ...]:
    values = (
        ("deployment", pod.deployment),
        ("namespace", pod.namespace),
        ("node", node),
        ("pod", pod.name),
        ("uid", pod.uid),
        ("workload", pod.workload),
        ("workload_kind", pod.workload_kind),
    )
    return extra + tuple((name, value) for name, value in values if value is not None)


_POD_VALUES = operator.attrgetter(*POD_COLUMNS)
_CONTAINER_VALUES = operator.attrgetter(*CONTAINER_COLUMNS)
_NODE_SERIES = tuple(metric_name("node", name) for name in NODE_COLUMNS)
_POD_SERIES = tuple(metric_name("pod", name) for name in POD_COLUMNS)
_CONTAINER_SERIES = tuple(metric_name("container", name) for name in CONTAINER_COLUMNS)
_SEEN = {scope: seen_name(scope) for scope in ("node", "pod", "container")}


# -- HTTP ------------------------------------------------------------------------------


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


def _options_from_query(query: dict[str, list[str]]) -> dict[str, str]:
    found = {}
    for name, values in query.items():
        if len(values) != 1:
            raise ValueError(f"storage URL: {name} given {len(values)} times")
        found[name] = values[0]
    return found


@register("prometheus+http")
@register("prometheus+https")
class PrometheusStorage(Storage):
    """Samples in a Prometheus-compatible engine (Prometheus, VictoriaMetrics, Mimir, ...)."""

    def __init__(
        self,
        read_url: str,
        write_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        bearer_token: str | None = None,
        ca_file: str | None = None,
        cluster: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        history: float = HISTORY,
        clock=time.time,
        **embedded_only,
    ) -> None:
        """`read_url` is the base of /api/v1/query, `write_url` the remote-write endpoint;
        `cluster` labels every series written and read (several clusters in one engine);
        options of the embedded store (retention, autocheckpoint) have no effect here: the
        engine keeps its own retention."""
        headers = {}
        if bearer_token is not None:
            headers["Authorization"] = f"Bearer {bearer_token}"
        elif username is not None:
            credentials = f"{username}:{password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        context = ssl.create_default_context(cafile=ca_file)
        self.read = Endpoint(read_url, headers, context, timeout)
        self.write_endpoint = Endpoint(write_url, headers, context, timeout)
        self.retries = retries
        self.history = history
        self.cluster = cluster
        self._base = {"cluster": cluster} if cluster else {}
        self._extra = (("cluster", cluster),) if cluster else ()
        self._clock = clock
        self._encoder = SeriesEncoder()
        self._encoder_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options) -> "PrometheusStorage":
        """prometheus+http://HOST:PORT[/PREFIX][?OPTIONS] (or prometheus+https://): queries
        go to PREFIX/api/v1/query, writes to PREFIX/api/v1/write. Options: read_url=URL and
        write_url=URL for engines that split them (vmselect, vminsert), user:password@ in the
        URL or username= and password_file= for basic auth, bearer_token_file=, ca_file=
        (TLS to the engine), cluster= (a label on every series), timeout=, retries=,
        history= (seconds looked back for entities without a time bound)."""
        scheme, _, rest = url.partition("://")
        parts = urllib.parse.urlsplit(f"{scheme.removeprefix('prometheus+')}://{rest}")
        if not parts.hostname:
            raise ValueError(f"storage URL {url!r}: expected {scheme}://HOST[:PORT][/PREFIX]")
        query = _options_from_query(urllib.parse.parse_qs(parts.query, keep_blank_values=True))
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        known = {
            "read_url",
            "write_url",
            "username",
            "password_file",
            "bearer_token_file",
            "ca_file",
            "cluster",
            "timeout",
            "retries",
            "history",
        }
        unknown = set(query) - known
        if unknown:
            raise ValueError(f"storage URL {url!r}: unknown option {sorted(unknown)[0]!r}")
        username = query.get("username", urllib.parse.unquote(parts.username or "") or None)
        password = urllib.parse.unquote(parts.password) if parts.password else None
        if "password_file" in query:
            password = Path(query["password_file"]).read_text().strip()
        bearer = None
        if "bearer_token_file" in query:
            bearer = Path(query["bearer_token_file"]).read_text().strip()
        for name, kind in (("timeout", float), ("retries", int), ("history", float)):
            if name in query:
                try:
                    options[name] = kind(query[name])
                except ValueError:
                    raise ValueError(f"storage URL {url!r}: {name} is not a number") from None
        return cls(
            query.get("read_url", base),
            query.get("write_url", base + "/api/v1/write"),
            username=username,
            password=password,
            bearer_token=bearer,
            ca_file=query.get("ca_file"),
            cluster=query.get("cluster"),
            **options,
        )

    # -- writing ---------------------------------------------------------------------

    def encode(self, payloads: Sequence) -> tuple[bytes, int]:
        """The uncompressed WriteRequest of payloads, and the number of metric samples."""
        parts: list[bytes] = []
        samples = 0
        extra = self._extra
        with self._encoder_lock:
            add = self._encoder.add
            for payload in payloads:
                bucket = bucket_of(payload.timestamp)
                tail = SeriesEncoder.timestamp_field(sample_time(payload.timestamp))
                info = payload.node_info
                labels = tuple(sorted((*extra, ("node", payload.node))))
                values = node_row(payload)
                samples += add(parts, labels, tail, _NODE_SERIES, values)
                described = [
                    (name, str(getattr(info, name)))
                    for name in _NODE_INFO
                    if getattr(info, name, None) is not None
                ]
                labels = tuple(sorted((*labels, *described)))
                add(parts, labels, tail, (_SEEN["node"],), (bucket,))
                for pod in {pod.uid: pod for pod in payload.pods}.values():
                    labels = _pod_labels(pod, payload.node, extra)
                    values = _POD_VALUES(pod)
                    samples += add(parts, labels, tail, _POD_SERIES, values)
                    described = (("qos", pod.qos),) if pod.qos is not None else ()
                    seen = tuple(sorted((*labels, *described)))
                    add(parts, seen, tail, (_SEEN["pod"],), (bucket,))
                    for container in {c.name or c.id: c for c in pod.containers}.values():
                        named = (("container", container.name), ("container_id", container.id))
                        named = tuple(label for label in named if label[1] is not None)
                        labels_of = tuple(sorted((*labels, named[0])))
                        values = _CONTAINER_VALUES(container)
                        samples += add(parts, labels_of, tail, _CONTAINER_SERIES, values)
                        seen_labels = tuple(sorted((*labels, *named)))
                        add(parts, seen_labels, tail, (_SEEN["container"],), (bucket,))
        return b"".join(parts), samples

    def write(self, payloads: Sequence) -> int:
        """Store payloads in one remote-write request (the engine appends it whole or not at
        all), retried on connection errors, 5xx and 429; OSError(EAGAIN) when the engine
        does not take it in the end, which ingest answers with 503."""
        body, samples = self.encode(payloads)
        self._post(remote_write.compress(body))
        return samples

    def _post(self, body: bytes) -> None:
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
            time.sleep(delay)
            delay *= 2

    # -- reading ---------------------------------------------------------------------

    def _query(self, path: str, form: dict[str, str]):
        body = urllib.parse.urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, answer = self.read.request("POST", path, body, headers)
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

    def _horizon(self) -> int:
        return bucket_of(self._clock() + AHEAD)

    def _matchers(self, kind: EntityKind, filters: dict[str, str]) -> dict[str, str]:
        matchers = dict(self._base)
        for name, value in filters.items():
            label = _FILTERS[kind].get(name)
            if label is None:
                raise ValueError(f"{kind} cannot be filtered by {name}")
            matchers[label] = value
        return matchers

    def _selector(self, name: str, kind: EntityKind, matchers: dict, regex=None) -> str:
        # A namespace or deployment is made of the pods that carry its labels.
        required = _KEY[kind] if kind in (EntityKind.NAMESPACE, EntityKind.DEPLOYMENT) else ()
        return selector(name, matchers, regex, required)

    def _last_seen(self, kind: EntityKind, matchers: dict, first: int, last: int) -> dict:
        """Per entity key, (labels, newest bucket) of each of its `seen` series with a sample
        in buckets [first, last]. Only the last SCAN_SPAN seconds of reports are read whole
        (reading a week's costs about a second per 250 pods): the entities that reported
        only before are found in the engine's index, and their reports alone are read."""
        recent = max(first, min(last, bucket_of(self._clock())) - SCAN_SPAN)
        found = self._newest(kind, matchers, {}, recent, last)
        if recent == first:
            return found
        form = {
            "match[]": self._selector(seen_name(_SCOPE[kind]), kind, matchers),
            "start": str(first),
            "end": str(recent),
        }
        try:
            indexed = self._query("/api/v1/series", form)
        except EngineError:  # more series than it names at once (VictoriaMetrics: 30,000)
            return self._newest(kind, matchers, {}, first, last)
        # The index may name series whose samples lie just outside: reading them tells.
        older = {_key(kind, labels) for labels in indexed}
        older -= found.keys()
        if older:
            regex = _restriction(kind, older)
            for key, series in self._newest(kind, matchers, regex, first, recent - BUCKET).items():
                if key in older:
                    found[key] = series
        return found

    def _newest(self, kind: EntityKind, matchers: dict, regex: dict, first: int, last: int):
        seen = seen_name(_SCOPE[kind])
        reach = _duration(last + BUCKET - first)

        def build(narrowed: dict) -> str:
            expression = f"max_over_time({self._selector(seen, kind, matchers, narrowed)}[{reach}])"
            if kind in _GROUPS:
                return f"max by ({','.join(_KEY[kind])}) ({expression})"
            return expression

        found = defaultdict(list)
        for item in self.instant(_short(build, regex)[0], last + BUCKET):
            bucket = int(float(item["value"][1]))
            found[_key(kind, item["metric"])].append((item["metric"], bucket))
        return found

    def entities(self, kind, filters=None, since=None, span=None):
        kind = EntityKind(kind)
        filters = dict(filters or {})
        key = filters.pop("key") if kind is EntityKind.CONTAINER and "key" in filters else None
        matchers = self._matchers(kind, filters)
        horizon = self._horizon()
        if span is None:
            first = bucket_of(self._clock() - self.history) if since is None else since
            found = self._last_seen(kind, matchers, first, horizon) if first <= horizon else {}
        else:
            first, last = span.first_bucket(), span.last_bucket()
            found = {}
            if first <= last:
                # Their reports from the span's start on: those whose newest lies in the span
                # reported in it; the others (a span ending before now) are asked again.
                found = self._last_seen(kind, matchers, first, max(horizon, last))
                later = {key for key, series in found.items() if _newest(series) > last}
                if later:
                    inside = self._last_seen(kind, matchers, first, last)
                    found = {key: series for key, series in found.items() if key in inside}
        if key is not None:
            found = {k: series for k, series in found.items() if k[1] == key}
        return _make_entities(kind, found)

    def latest(self, entities, names):
        names = tuple(names)
        answers: list = [None] * len(entities)
        wanted: dict[tuple[EntityKind, int], list[int]] = defaultdict(list)
        until = self._newest_until(entities, bucket_of(self._clock()))
        for i, entity in enumerate(entities):
            bucket = until.get(i, entity.last_bucket)
            if entity.kind is EntityKind.CLUSTER and bucket is not None:
                bucket = self._complete_bucket(bucket)
            if bucket is None:
                answers[i] = {"timestamp": None, "metrics": as_latest(names, [None] * len(names))}
            else:
                wanted[entity.kind, bucket].append(i)
        for (kind, bucket), indexes in wanted.items():
            rows = self._bucket_rows(kind, bucket, [entities[i] for i in indexes], names)
            known = columns(kind)
            nothing = [None] * len(known)
            for i in indexes:
                values = rows.get(_entity_key(entities[i]), nothing)
                picked = [values[known.index(name)] for name in names]
                answers[i] = {"timestamp": bucket, "metrics": as_latest(names, picked)}
        return answers

    def _newest_until(self, entities: Sequence[Entity], last: int) -> dict[int, int | None]:
        """By position, the newest bucket up to `last` of the entities with later ones (a
        node whose clock runs ahead writes them); None for those with none."""
        ahead: dict[EntityKind, list[int]] = defaultdict(list)
        for i, entity in enumerate(entities):
            if entity.last_bucket is not None and entity.last_bucket > last:
                ahead[entity.kind].append(i)
        until: dict[int, int | None] = {}
        for kind, indexes in ahead.items():
            keys = [_entity_key(entities[i]) for i in indexes]
            matchers = self._matchers(kind, {})
            found = self._newest(kind, matchers, _restriction(kind, keys), last - SCAN_SPAN, last)
            for i, key in zip(indexes, keys, strict=True):
                until[i] = _newest(found[key]) if key in found else None
        return until

    def _raw_samples(self, names: Sequence[str], matchers: dict, regex: dict, bucket: int):
        """(time, name, labels, value) of the newest sample in a bucket of each series named,
        oldest first."""
        chosen, _ = _short(lambda r: selector(None, matchers, {**r, "__name__": names}), regex)
        samples = []
        for item in self.instant(f"{chosen}[{_duration(BUCKET)}]", bucket + BUCKET):
            labels = item["metric"]
            at, value = item["values"][-1]  # the engine gives a series' samples oldest first
            samples.append((at, labels.pop("__name__"), labels, _number(value)))
        samples.sort(key=operator.itemgetter(0))
        return samples

    def _bucket_rows(
        self, kind: EntityKind, bucket: int, entities: Sequence[Entity], names: Sequence[str]
    ) -> dict:
        """Per entity key, its values of columns(kind) in one bucket: those that `names`
        need, the others None."""
        stored = STORED_COLUMNS[kind]
        needed = set(names).union(*(_PERCENTS[name] for name in names if name in _PERCENTS))
        chosen = [name for name in stored if name in needed]
        regex = _restriction(kind, map(_entity_key, entities))
        rows: dict[tuple, list] = {}
        if kind in _GROUPS:  # summed by the engine, as a series' steps are
            expression, _ = _short(lambda r: self._union(kind, chosen, r, BUCKET, "last"), regex)
            for item in self.instant(expression, bucket + BUCKET) if chosen else ():
                labels = item["metric"]
                row = rows.setdefault(_key(kind, labels), [None] * len(stored))
                row[stored.index(labels[_METRIC_LABEL])] = _number(item["value"][1])
            return {key: derive(kind, row) for key, row in rows.items()}
        series = {metric_name(_SCOPE[kind], name): stored.index(name) for name in chosen}
        # An entity whose labels changed within the bucket has several series: the newest
        # sample goes last.
        for _, name, labels, value in self._raw_samples(list(series), self._base, regex, bucket):
            row = rows.setdefault(_key(kind, labels), [None] * len(stored))
            if value is not None:
                row[series[name]] = value
        return rows

    def _complete_bucket(self, last: int) -> int:
        """The bucket the cluster's latest values come from (`complete_bucket`)."""
        seen = selector(seen_name("node"), self._base)
        items = self.instant(f"{seen}[{_duration(60 + BUCKET)}]", last + BUCKET)
        return complete_bucket(
            last,
            (
                (bucket_of(float(timestamp)), item["metric"].get("node", ""))
                for item in items
                for timestamp, _ in item["values"]
            ),
        )

    def _expression(self, kind: EntityKind, name: str, regex: dict, reach: int, agg: str) -> str:
        """The value of a metric over the `reach` seconds of buckets before the evaluation
        time, combined by agg; for groups, over the sums of each bucket."""
        scope = _SCOPE[kind]
        if kind not in _GROUPS:
            window = f"{selector(metric_name(scope, name), self._base, regex)}[{_duration(reach)}]"
            # An entity whose labels changed (a pod's metadata known later) has several
            # series: combined here for max, min and sum; for last `series` picks one, and
            # for avg asks again for their mean (_MEAN), which costs two scans.
            by = f"by ({','.join(_SERIES_KEY[kind])})"
            if reach == BUCKET or agg in ("last", "avg"):
                return f"{_OVER_TIME[agg if reach > BUCKET else 'last']}({window})"
            if agg == _MEAN:
                return f"sum {by} (sum_over_time({window})) / sum {by} (count_over_time({window}))"
            return f"{agg} {by} ({_OVER_TIME[agg]}({window}))"
        inner = self._bucket_expression(kind, name, regex)
        if reach == BUCKET:
            return inner
        # The subquery's points are the bucket ends in (t - reach, t]: 1 ms short of reach,
        # so that the point at t - reach (the end of the bucket before) is out either way.
        return f"{_OVER_TIME[agg]}(({inner})[{_duration(reach - 0.001)}:{BUCKET}s])"

    def _bucket_expression(self, kind: EntityKind, name: str, regex: dict) -> str:
        """A group's value of a metric in the bucket ending at the evaluation time."""
        scope = _SCOPE[kind]
        by = f"by ({','.join(_KEY[kind])})"

        def last(series: str) -> str:
            chosen = self._selector(series, kind, self._base, regex)
            return f"last_over_time({chosen}[{_duration(BUCKET)}])"

        if name == ("node_count" if kind is EntityKind.CLUSTER else "pod_count"):
            return f"count {by} ({last(seen_name(scope))})"
        if name in _PERCENTS:
            part, whole = _PERCENTS[name]
            return (
                f"100 * sum({last(metric_name(scope, part))})"
                f" / (sum({last(metric_name(scope, whole))}) > 0)"
            )
        return f"sum {by} ({last(metric_name(scope, name))})"

    def _union(self, kind: EntityKind, names: Sequence[str], regex: dict, reach: int, agg: str):
        return " or ".join(
            f"label_replace({self._expression(kind, name, regex, reach, agg)},"
            f' "{_METRIC_LABEL}", "{name}", "{_METRIC_LABEL}", ".*")'
            for name in names
        )

    def series(self, entities, names, span):
        names = tuple(names)
        answers = [fold([], names, span) for _ in entities]
        if not entities or not len(span.steps()):
            return answers
        for kind in dict.fromkeys(entity.kind for entity in entities):
            of_kind = [(i, e) for i, e in enumerate(entities) if e.kind is kind]
            several = self._fold(kind, of_kind, names, span, span.agg, answers)
            if several and span.agg == "avg" and kind not in _GROUPS:
                # Their series' means, each of its own samples, are asked again as one mean.
                again = [(i, e) for i, e in of_kind if i in several]
                self._fold(kind, again, names, span, _MEAN, answers)
        return answers

    def _fold(self, kind: EntityKind, entities: list, names: tuple, span, agg: str, answers):
        """Fill in the `answers` of (index, entity) pairs of one kind over the span; returns
        the indexes of the entities that had several series (their labels changed)."""
        steps = span.steps()
        first, last, step = span.first_bucket(), span.last_bucket(), span.step
        where = {_entity_key(e): i for i, e in entities}
        position = {label: k for k, label in enumerate(steps)}
        filled: set[tuple[int, str, int]] = set()
        several: set[int] = set()

        def fill(items: list[dict], label_of) -> None:
            found = []
            for item in items:
                i = where.get(_key(kind, item["metric"]))
                if i is not None:
                    found.append((i, item))
            if len({(i, item["metric"][_METRIC_LABEL]) for i, item in found}) < len(found):
                # Of an entity's several series, the one labelled as it is now is the newest:
                # its values go last.
                found.sort(key=lambda pair: _agreement(entity_at[pair[0]], pair[1]["metric"]))
            for i, item in found:
                name = item["metric"][_METRIC_LABEL]
                column = answers[i][name]
                for timestamp, value in item.get("values") or [item["value"]]:
                    label = label_of(float(timestamp))
                    if (i, name, label) in filled:
                        several.add(i)
                    filled.add((i, name, label))
                    column[position[label]] = _number(value)

        entity_at = dict(entities)
        regex = _restriction(kind, where)
        held = self._held(kind, [e for _, e in entities], first, last)
        if held is None:
            return several
        whole = [s for s in steps if s >= first and s + step - BUCKET <= last]
        # Whole steps come from range queries, but those ending near the clock (see RECENT)
        # and the partial steps at either end from an instant query each; only the steps
        # with buckets held.
        now = self._clock()
        near = [s for s in whole if now - RECENT < s + step <= now + step + RECENT]
        runs = [
            [s for s in whole if s + step <= now - RECENT],
            [s for s in whole if s + step > now + step + RECENT],
        ]
        edges = [s for s in dict.fromkeys((steps[0], steps[-1])) if s not in whole]
        singles = dict.fromkeys((*edges, *near))

        def inside(label: int) -> bool:
            return label <= held[1] and label + step - BUCKET >= held[0]

        expression, regex = _short(lambda r: self._union(kind, names, r, step, agg), regex)
        steps_per_query = MAX_STEPS
        if kind in _GROUPS:  # a subquery over each chunk
            room = SUBQUERY_POINTS * BUCKET - step - SUBQUERY_MARGIN
            steps_per_query = max(1, min(MAX_STEPS, room // step + 1))
        for run in runs:
            run = [label for label in run if inside(label)]
            if run:
                items = self.range_query(
                    expression, run[0] + step, run[-1] + step, step, steps_per_query
                )
                fill(items, lambda t: int(t) - step)
        for label in filter(inside, singles):
            start, end = max(label, first), min(label + step - BUCKET, last)
            reach = end + BUCKET - start
            items = self.instant(self._union(kind, names, regex, reach, agg), end + BUCKET)
            fill(items, lambda _, label=label: label)
        return several

    def _held(self, kind: EntityKind, entities: Sequence[Entity], first: int, last: int):
        """The buckets of [first, last] that may hold samples of these entities: up to their
        newest report, and for groups over a span longer than LONG_SPAN (their subqueries
        cost by the span, samples or none), from the first report of a node in it, which
        every pod's report comes with; None if there are none."""
        newest = [entity.last_bucket for entity in entities if entity.last_bucket is not None]
        last = min(last, max(newest, default=first - BUCKET))
        if kind in _GROUPS and last - first > LONG_SPAN:
            seen = selector(seen_name("node"), self._base)
            reach = _duration(last + BUCKET - first)
            items = self.instant(f"min(min_over_time({seen}[{reach}]))", last + BUCKET)
            first = max(first, int(float(items[0]["value"][1]))) if items else last + BUCKET
        return (first, last) if first <= last else None

    def roll_up(self) -> int:
        """Nothing: the engine answers every span from its own samples."""
        return 0

    def expire(self) -> int:
        """Nothing: the engine keeps its own retention."""
        return 0

    def checkpoint(self) -> None:
        """Nothing: the engine makes writes durable before it answers them."""

    def ping(self) -> None:
        self.instant("vector(1)", self._clock())

    def stats(self) -> dict[str, float]:
        """The size of the store is the engine's to tell: NaN here."""
        return {"bytes": math.nan}

    def close(self) -> None:
        self.read.close()
        self.write_endpoint.close()


_METRIC_LABEL = "cloudmon_metric"
_MEAN = "mean"  # avg over the samples of all an entity's series
# The labels telling apart the entities of a kind in its metric series (see `_key`).
_SERIES_KEY = {
    EntityKind.NODE: ("node",),
    EntityKind.POD: ("uid",),
    EntityKind.CONTAINER: ("uid", "container", "container_id"),
}
_PERCENTS = {
    "cpu_percent": ("cpu_cores", "cpu_capacity_cores"),
    "memory_percent": ("memory_used_bytes", "memory_total_bytes"),
}


def _key(kind: EntityKind, labels: dict[str, str]) -> tuple:
    if kind is EntityKind.CONTAINER:  # one without a name is known by its ID
        return (labels.get("uid", ""), labels.get("container") or labels.get("container_id", ""))
    return tuple(labels.get(label, "") for label in _KEY[kind])


def _entity_key(entity: Entity) -> tuple:
    if entity.kind is EntityKind.CONTAINER:
        identity = entity.identity
        return (identity["uid"] or "", identity["name"] or identity["container_id"] or "")
    return tuple(entity.identity[field] or "" for field in KINDS[entity.kind].key)


def _newest(series: list[tuple[dict, int]]) -> int:
    return max(bucket for _, bucket in series)


def _agreement(entity: Entity, labels: dict[str, str]) -> int:
    """How many of an entity's identity fields a series' labels give as they are now."""
    return sum(
        labels.get(label) == entity.identity[field] for field, label in _FIELDS[entity.kind].items()
    )


def _short(build: Callable[[dict], str], regex: dict) -> tuple[str, dict]:
    """`build(regex)` and `regex`, or where that is longer than MAX_QUERY, `build({})` and {}:
    every series of the kind, whose entities' answers are picked here."""
    expression = build(regex)
    if len(expression) > MAX_QUERY:
        return build({}), {}
    return expression, regex


def _restriction(kind: EntityKind, keys: Iterable[tuple]) -> dict[str, list[str]]:
    """Regular-expression matchers narrowing a kind's series to those of the entities with
    these keys (containers, keyed by name or ID, to their pods')."""
    keys = list(keys)
    labels = _KEY[kind][:1] if kind is EntityKind.CONTAINER else _KEY[kind]
    return {label: [key[i] for key in keys] for i, label in enumerate(labels)}


def _order(entity: Entity) -> list:
    """Entities in the embedded store's order: by identity, containers by their key."""
    values = entity.identity.values()
    if entity.kind is EntityKind.CONTAINER:
        values = (entity.identity["namespace"], entity.identity["pod"], *_entity_key(entity))
    return [(v is not None, v or "") for v in values]


def _make_entities(kind: EntityKind, found: dict) -> list[Entity]:
    entities = []
    for series in found.values():
        series.sort(key=lambda item: item[1], reverse=True)
        labels: dict[str, str] = {}
        for metric, _ in series:  # newest first: older series fill in what newer ones lack
            for label, value in metric.items():
                labels.setdefault(label, value)
        identity = {field: labels.get(label) for field, label in _FIELDS[kind].items()}
        info = {}
        if kind is EntityKind.NODE:
            info = {
                name: _INFO_TYPES.get(name, str)(labels[name]) if name in labels else None
                for name in _NODE_INFO
            }
        elif kind is EntityKind.POD:
            info = {"qos": labels.get("qos")}
        entities.append(Entity(kind, 0, identity, series[0][1], info))
    entities.sort(key=_order)
    for number, entity in enumerate(entities):
        entity.id = number
    return entities
