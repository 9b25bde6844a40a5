"""The agent's payload, schema 1: one definition for the agent that builds it and the
server that validates it. Metric fields are derived from the catalogue."""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from cloudmon.metrics import Scope, metrics_for

SCHEMA = 1

# Kubernetes object names are DNS subdomains (at most 253 characters); this admits them
# and host names with capitals, and refuses separators such as '/', NUL and white space.
Name = Annotated[str, Meta(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,251}[A-Za-z0-9])?$")]
Uid = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_]{0,127}$")]
ContainerId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.:]{0,254}$")]
WorkloadKind = Literal[
    "Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet", "Pod"
]
Qos = Literal["guaranteed", "burstable", "besteffort"]

NonNegative = Annotated[float, Meta(ge=0, le=1.8e19)]
NonNegativeInt = Annotated[int, Meta(ge=0)]


def _metric_fields(scope: Scope) -> list[tuple]:
    return [
        (m.name, (NonNegativeInt if m.integer else NonNegative) | None, None)
        for m in metrics_for(scope)
    ]


_STRUCT_OPTIONS = {"forbid_unknown_fields": False, "omit_defaults": False}

NodeMetrics = msgspec.defstruct("NodeMetrics", _metric_fields(Scope.NODE), **_STRUCT_OPTIONS)

Container = msgspec.defstruct(
    "Container",
    [("id", ContainerId), ("name", Name | None, None), *_metric_fields(Scope.CONTAINER)],
    **_STRUCT_OPTIONS,
)

Pod = msgspec.defstruct(
    "Pod",
    [
        ("uid", Uid),
        ("name", Name | None, None),
        ("namespace", Name | None, None),
        ("deployment", Name | None, None),
        ("workload_kind", WorkloadKind | None, None),
        ("workload", Name | None, None),
        ("node", Name | None, None),
        ("qos", Qos | None, None),
        ("host_network", bool | None, None),
        ("containers", Annotated[list[Container], Meta(max_length=1000)], []),
        *_metric_fields(Scope.POD),
    ],
    **_STRUCT_OPTIONS,
)


class NodeInfo(msgspec.Struct, **_STRUCT_OPTIONS):
    cpu_count: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    memory_total_bytes: NonNegativeInt | None = None
    kernel: Annotated[str, Meta(max_length=256)] | None = None
    cgroup_version: Literal[1, 2] | None = None
    boot_time: NonNegative | None = None


class Payload(msgspec.Struct, **_STRUCT_OPTIONS):
    schema: Literal[1]
    node: Name
    timestamp: Annotated[float, Meta(ge=0, le=1e11)]
    interval: Annotated[float, Meta(gt=0, le=1e9)] | None
    node_info: NodeInfo
    node_metrics: NodeMetrics
    pods: Annotated[list[Pod], Meta(max_length=10000)]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Payload | list[Payload])


def encode(payload) -> bytes:
    """JSON bytes of a payload or a list of payloads."""
    return _encoder.encode(payload)


def decode(body: bytes) -> list:
    """Payloads from JSON bytes (one object or an array); raises msgspec.ValidationError."""
    decoded = _decoder.decode(body)
    return decoded if isinstance(decoded, list) else [decoded]
