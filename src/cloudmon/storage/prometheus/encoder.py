"""Payloads as the series the engine keeps, encoded into a remote-write WriteRequest. A node's
metric is the series `cloudmon_node_<metric>{node}`, a pod's
`cloudmon_pod_<metric>{namespace, pod, uid, node, deployment, workload_kind, workload}`, a
container's the pod's labels with `container` and `container_id`; every report also writes
`cloudmon_<scope>_seen_timestamp_seconds`, the start of its bucket, with the entity's
descriptive labels (a node's kernel, a pod's qos, ...): it says when and where it reported. A
sample is written at its own time, but never on a bucket's boundary (at least 1 ms after the
bucket's start), so that a range `[b, b + 10 s]` holds bucket b alone whether the engine
includes the range's start (Prometheus 2) or not (Prometheus 3, VictoriaMetrics); a second
report of a bucket is a second sample in it and `last_over_time` picks the newer (two reports
at the same millisecond would be a duplicate, which Prometheus refuses). The bytes are those
protobuf makes of `remote_write`'s messages, built from cached label fields; `client` sends
them, `promql` and `reader` find the series by the names given here.
"""

import itertools
import operator
import struct
import threading
from collections.abc import Sequence

from cloudmon.storage.base import BUCKET, bucket_of
from cloudmon.storage.model import (
    CONTAINER_COLUMNS,
    KINDS,
    NODE_COLUMNS,
    POD_COLUMNS,
    EntityKind,
    node_row,
)
from cloudmon.storage.prometheus import remote_write

PREFIX = "cloudmon_"
CACHE_LIMIT = 500_000  # encoded series heads kept before the cache starts afresh
# The node_info fields a node's `seen` series carries as labels.
NODE_INFO = ("cpu_count", "memory_total_bytes", "kernel", "cgroup_version", "boot_time")


def metric_name(scope: str, name: str) -> str:
    """The series name of a metric of a scope (node, pod, container)."""
    return f"{PREFIX}{scope}_{name}"


def seen_name(scope: str) -> str:
    """The series saying when and with which labels an entity of a scope reported."""
    return f"{PREFIX}{scope}_seen_timestamp_seconds"


def sample_time(timestamp: float) -> int:
    """The millisecond a sample of this time is written at: its own, kept off the bucket's
    boundary."""
    bucket = bucket_of(timestamp)
    offset = min(max(int((timestamp - bucket) * 1000), 1), BUCKET * 1000 - 1)
    return bucket * 1000 + offset


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


# A pod's identity fields as labels (model.KINDS), sorted by label as remote-write wants them;
# its node is the payload's.
_POD_FIELDS = sorted(KINDS[EntityKind.POD].identity.items(), key=operator.itemgetter(1))
_POD_LABELS = tuple(label for _, label in _POD_FIELDS)
_POD_NODE = _POD_LABELS.index(KINDS[EntityKind.POD].identity["node"])
_pod_identity = operator.attrgetter(*(field for field, _ in _POD_FIELDS if field != "node"))


def _pod_labels(pod, node: str, extra: tuple) -> tuple[tuple[str, str], ...]:
    values = list(_pod_identity(pod))
    values.insert(_POD_NODE, node)
    return extra + tuple(
        (label, value)
        for label, value in zip(_POD_LABELS, values, strict=True)
        if value is not None
    )


_POD_VALUES = operator.attrgetter(*POD_COLUMNS)
_CONTAINER_VALUES = operator.attrgetter(*CONTAINER_COLUMNS)
_NODE_SERIES = tuple(metric_name("node", name) for name in NODE_COLUMNS)
_POD_SERIES = tuple(metric_name("pod", name) for name in POD_COLUMNS)
_CONTAINER_SERIES = tuple(metric_name("container", name) for name in CONTAINER_COLUMNS)
_SEEN = {scope: seen_name(scope) for scope in ("node", "pod", "container")}


class PayloadEncoder:
    """Payloads as one WriteRequest's bytes, every series labelled with the cluster if one is
    given; one SeriesEncoder's cache shared by the threads that write."""

    def __init__(self, cluster: str | None) -> None:
        self._extra = (("cluster", cluster),) if cluster else ()
        self._series = SeriesEncoder()
        self._lock = threading.Lock()

    def encode(self, payloads: Sequence) -> tuple[bytes, int]:
        """The uncompressed WriteRequest of payloads, and the number of metric samples."""
        parts: list[bytes] = []
        samples = 0
        extra = self._extra
        with self._lock:
            add = self._series.add
            for payload in payloads:
                bucket = bucket_of(payload.timestamp)
                tail = SeriesEncoder.timestamp_field(sample_time(payload.timestamp))
                info = payload.node_info
                labels = tuple(sorted((*extra, ("node", payload.node))))
                values = node_row(payload)
                samples += add(parts, labels, tail, _NODE_SERIES, values)
                described = [
                    (name, str(getattr(info, name)))
                    for name in NODE_INFO
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
