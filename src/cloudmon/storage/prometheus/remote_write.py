"""Prometheus remote-write 1.0, the wire format: a WriteRequest in protobuf, compressed with
snappy. The messages are declared here after prometheus/prompb (types.proto, remote.proto) and
built at import through the protobuf library; field numbers follow those files. `encoder`
builds its label fields with them and the tests check its faster bytes against
`write_request`; `client` frames a request with `compress` and `HEADERS`.
"""

from collections.abc import Iterable, Sequence

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "User-Agent": "cloudmon",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}

_F = descriptor_pb2.FieldDescriptorProto
_MESSAGES = {
    # name: (field name, number, type, label, message type)
    "Label": (
        ("name", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("value", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
    ),
    "Sample": (
        ("value", 1, _F.TYPE_DOUBLE, _F.LABEL_OPTIONAL, None),
        ("timestamp", 2, _F.TYPE_INT64, _F.LABEL_OPTIONAL, None),
    ),
    "TimeSeries": (
        ("labels", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.Label"),
        ("samples", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.Sample"),
    ),
    "WriteRequest": (
        ("timeseries", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.TimeSeries"),
    ),
}


def _build_classes() -> dict[str, type]:
    file = descriptor_pb2.FileDescriptorProto(
        name="cloudmon/remote_write.proto", package="prometheus", syntax="proto3"
    )
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
        for name in _MESSAGES
    }


_CLASSES = _build_classes()
Label = _CLASSES["Label"]
Sample = _CLASSES["Sample"]
TimeSeries = _CLASSES["TimeSeries"]
WriteRequest = _CLASSES["WriteRequest"]

# One series: its labels as (name, value) pairs sorted by name, __name__ included, then its
# samples as (value, timestamp in ms) pairs.
Series = tuple[Sequence[tuple[str, str]], Sequence[tuple[float, int]]]


def write_request(series: Iterable[Series]):
    """A WriteRequest holding these series."""
    request = WriteRequest()
    for labels, samples in series:
        timeseries = request.timeseries.add()
        timeseries.labels.extend(Label(name=name, value=value) for name, value in labels)
        timeseries.samples.extend(
            Sample(value=value, timestamp=timestamp) for value, timestamp in samples
        )
    return request


def compress(serialized: bytes) -> bytes:
    """A serialized WriteRequest as the body of a remote-write POST (snappy block format)."""
    return bytes(cramjam.snappy.compress_raw(serialized))


def decode(body: bytes):
    """The WriteRequest of a remote-write body."""
    return WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
