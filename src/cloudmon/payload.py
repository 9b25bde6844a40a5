"""The agent's payload, schema 1: one definition for the agent that builds it and the
server that validates it. Metric fields are derived from the catalogue."""

import operator
import re
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from cloudmon.metrics import Scope, metrics_for

SCHEMA = 1

# Kubernetes object names are DNS subdomains (at most 253 characters); this admits them
# and host names with capitals, and refuses separators such as '/', NUL and white space.
NAME_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,251}[A-Za-z0-9])?$"
UID_PATTERN = r"^[A-Za-z0-9][-A-Za-z0-9_]{0,127}$"
CONTAINER_ID_PATTERN = r"^[A-Za-z0-9][-A-Za-z0-9_.:]{0,254}$"


def _matching(pattern: str, longest: int):
    # The pattern is checked by `decode` against a cache of names already seen, rather than
    # by msgspec for every string: names repeat in every payload, and a regular expression
    # per string was most of the time taken to decode one.
    return Annotated[
        str, Meta(min_length=1, max_length=longest, extra_json_schema={"pattern": pattern})
    ]


Name = _matching(NAME_PATTERN, 253)
Uid = _matching(UID_PATTERN, 128)
ContainerId = _matching(CONTAINER_ID_PATTERN, 255)
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
    payloads = decoded if isinstance(decoded, list) else [decoded]
    for index, item in enumerate(payloads):
        for pattern, strings in _strings(item):
            if not pattern.admits(strings):
                where = f"$[{index}]" if isinstance(decoded, list) else "$"
                raise msgspec.ValidationError(_refusal(item, where))
    return payloads


class _Pattern:
    """A regular expression and the strings that already matched it (a bounded cache)."""

    LIMIT = 500_000

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.regex = re.compile(pattern)
        self.matched: set[str] = set()

    def admits(self, strings: set[str]) -> bool:
        """Whether every string matches."""
        new = strings - self.matched
        if not all(map(self.regex.fullmatch, new)):
            return False
        if len(self.matched) + len(new) > self.LIMIT:
            self.matched.clear()
        self.matched |= new
        return True


_NAME = _Pattern(NAME_PATTERN)
_UID = _Pattern(UID_PATTERN)
_CONTAINER_ID = _Pattern(CONTAINER_ID_PATTERN)
_POD_NAMES = ("name", "namespace", "deployment", "workload", "node")
_pod_names = operator.attrgetter(*_POD_NAMES)


def _strings(item) -> tuple[tuple[_Pattern, set[str]], ...]:
    names, uids, ids = {item.node}, set(), set()
    for pod in item.pods:
        names.update(_pod_names(pod))
        uids.add(pod.uid)
        for container in pod.containers:
            ids.add(container.id)
            names.add(container.name)
    names.discard(None)
    return (_NAME, names), (_UID, uids), (_CONTAINER_ID, ids)


def _refusal(item, where: str) -> str:
    """msgspec's message for the first string of a payload that does not match its pattern."""
    fields = [(_NAME, "node", item.node)]
    for i, pod in enumerate(item.pods):
        fields.append((_UID, f"pods[{i}].uid", pod.uid))
        fields += [(_NAME, f"pods[{i}].{name}", getattr(pod, name)) for name in _POD_NAMES]
        for j, container in enumerate(pod.containers):
            fields.append((_CONTAINER_ID, f"pods[{i}].containers[{j}].id", container.id))
            fields.append((_NAME, f"pods[{i}].containers[{j}].name", container.name))
    return next(
        f"Expected `str` matching regex {pattern.pattern!r} - at `{where}.{path}`"
        for pattern, path, value in fields
        if value is not None and not pattern.regex.fullmatch(value)
    )
