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
UnixTime = Annotated[float, Meta(ge=0, le=1e11)]
# A measurement the server makes on receipt (it replaces whatever an agent sends there).
Measured = Annotated[float, Meta(ge=-1e11, le=1e11)]


def _metric_type(metric):
    if metric.by_server:
        return Measured
    return NonNegativeInt if metric.integer else NonNegative


def _metric_fields(scope: Scope) -> list[tuple]:
    return [(m.name, _metric_type(m) | None, None) for m in metrics_for(scope)]


def _wire_types(forbid_unknown_fields: bool) -> dict[str, type]:
    """The payload's structs, refusing or ignoring fields they do not declare."""
    # Not tracked by the garbage collector (they hold no cycles): a request of 22 payloads
    # decodes thousands of pods, each of which would count towards a collection.
    options = {"forbid_unknown_fields": forbid_unknown_fields, "omit_defaults": False, "gc": False}
    node_metrics = msgspec.defstruct("NodeMetrics", _metric_fields(Scope.NODE), **options)
    container = msgspec.defstruct(
        "Container",
        [("id", ContainerId), ("name", Name | None, None), *_metric_fields(Scope.CONTAINER)],
        **options,
    )
    pod = msgspec.defstruct(
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
            ("containers", Annotated[list[container], Meta(max_length=1000)], []),
            *_metric_fields(Scope.POD),
        ],
        **options,
    )
    node_info = msgspec.defstruct(
        "NodeInfo",
        [
            ("cpu_count", Annotated[int, Meta(ge=1, le=1_000_000)] | None, None),
            ("memory_total_bytes", NonNegativeInt | None, None),
            ("kernel", Annotated[str, Meta(max_length=256)] | None, None),
            ("cgroup_version", Literal[1, 2] | None, None),
            ("boot_time", NonNegative | None, None),
        ],
        **options,
    )
    payload = msgspec.defstruct(
        "Payload",
        [
            ("schema", Literal[1]),
            ("node", Name),
            ("timestamp", UnixTime),
            ("interval", Annotated[float, Meta(gt=0, le=1e9)] | None),
            ("node_info", node_info),
            ("node_metrics", node_metrics),
            ("pods", Annotated[list[pod], Meta(max_length=10000)]),
            # When the agent sent the payload (not when it was sampled: a spooled payload is
            # sent late); the server measures the node's clock skew from it.
            ("sent_at", UnixTime | None, None),
        ],
        forbid_unknown_fields=forbid_unknown_fields,
        omit_defaults=True,  # no `sent_at` until the sender adds it
        gc=False,
    )
    return {
        "NodeMetrics": node_metrics,
        "Container": container,
        "Pod": pod,
        "NodeInfo": node_info,
        "Payload": payload,
    }


# Payloads are decoded by the strict types; only a payload with fields this version does
# not know (from a newer agent) is decoded again by the lenient ones, and its unknown
# fields listed. The agent builds payloads of the strict types.
_STRICT = _wire_types(forbid_unknown_fields=True)
_LENIENT = _wire_types(forbid_unknown_fields=False)
NodeMetrics = _STRICT["NodeMetrics"]
Container = _STRICT["Container"]
Pod = _STRICT["Pod"]
NodeInfo = _STRICT["NodeInfo"]
Payload = _STRICT["Payload"]

_encoder = msgspec.json.Encoder()
_strict_decoder = msgspec.json.Decoder(Payload | list[Payload])
_lenient_decoder = msgspec.json.Decoder(_LENIENT["Payload"] | list[_LENIENT["Payload"]])


def encode(payload) -> bytes:
    """JSON bytes of a payload or a list of payloads."""
    return _encoder.encode(payload)


def decode(body: bytes) -> list:
    """Payloads from JSON bytes (one object or an array); raises msgspec.ValidationError."""
    return decode_reporting(body)[0]


def decode_reporting(body: bytes) -> tuple[list, list[str]]:
    """Payloads from JSON bytes, and the fields they hold that this version ignores (as
    `node_metrics.NAME`, `pods[].NAME`, ...); raises msgspec.ValidationError."""
    ignored: list[str] = []
    try:
        decoded = _strict_decoder.decode(body)
    except msgspec.ValidationError as error:
        if not str(error).startswith("Object contains unknown field"):
            raise
        decoded = _lenient_decoder.decode(body)
        ignored = _unknown_fields(msgspec.json.decode(body))
    payloads = decoded if isinstance(decoded, list) else [decoded]
    for index, item in enumerate(payloads):
        for pattern, strings in _strings(item):
            if not pattern.admits(strings):
                where = f"$[{index}]" if isinstance(decoded, list) else "$"
                raise msgspec.ValidationError(_refusal(item, where))
    return payloads, ignored


_NESTED = {"node_info": "NodeInfo", "node_metrics": "NodeMetrics"}


def _unknown_fields(document) -> list[str]:
    """The fields of a decoded JSON body (a payload or a list of them, already valid for the
    lenient types) that the payload's structs do not declare, sorted."""
    found: set[str] = set()

    def check(obj: dict, kind: str, path: str) -> None:
        known = _STRICT[kind].__struct_fields__
        found.update(f"{path}{name}" for name in obj if name not in known)

    for item in document if isinstance(document, list) else [document]:
        check(item, "Payload", "")
        for field, kind in _NESTED.items():
            check(item[field], kind, f"{field}.")
        for pod in item["pods"]:
            check(pod, "Pod", "pods[].")
            for container in pod.get("containers") or ():
                check(container, "Container", "pods[].containers[].")
    return sorted(found)


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
