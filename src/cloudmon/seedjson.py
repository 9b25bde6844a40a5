"""The original system's JSON files (`seed-json`): nodes.json, pods.json, namespaces.json and
deployments.json, each an object from a key (a node; namespace/pod; a namespace;
namespace/deployment; the cluster is `__all__` in nodes.json) to 10 s buckets (the bucket's
start in unix seconds, as a string) to the list of entries received in that bucket.

`export` writes them from any store, an entry per entity and bucket: its identity fields, the
bucket as `timestamp`, `info` (a node's, a pod's QoS), its `metrics` as the API answers
them (named with their units: `_cores`, `_bytes`, `_bps`, `_percent`, `_total`; null ones
left out) and, in a pod's, its `containers` (name, `container_id`, metrics): cloudmon's
own addition, which the original system did not keep.

`read` validates a directory of such files whole, and turns the nodes' and pods' entries
into the payloads the agents would have sent; `write` stores them a few at a time. A
namespace's, a deployment's and the cluster's figures are sums of their pods' and nodes'
(the store adds them up as it writes), so those files are checked, not written. An entry may
also hold its metrics at its top level beside its identity (the original system's entries);
of several entries of one entity in a bucket the last counts, as a bucket reported again
replaces the first report.
"""

import json
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from cloudmon import payload as wire
from cloudmon.storage.base import BUCKET, Entity, Span, as_latest
from cloudmon.storage.model import IDENTITY, INTEGER_COLUMNS, EntityKind, answered

FILES = {
    "nodes.json": EntityKind.NODE,
    "pods.json": EntityKind.POD,
    "namespaces.json": EntityKind.NAMESPACE,
    "deployments.json": EntityKind.DEPLOYMENT,
}
CLUSTER_KEY = "__all__"
AT_ONCE = 200  # entities whose series are read at a time
WRITE_AT_ONCE = 20  # payloads a transaction stores: live ingest waits for one at most
NODE_INFO = ("cpu_count", "memory_total_bytes", "kernel", "cgroup_version", "boot_time")
_ENTRY_FIELDS = {"timestamp", "info", "metrics", "containers"}


class SeedError(ValueError):
    """A file that cannot be imported, naming the file, key and bucket."""


def key_of(kind: EntityKind, identity: dict) -> str:
    """An entity's key in its file."""
    if kind is EntityKind.NODE:
        return identity["node"]
    if kind in (EntityKind.POD, EntityKind.DEPLOYMENT):
        return f"{identity['namespace']}/{identity['name']}"
    if kind is EntityKind.NAMESPACE:
        return identity["namespace"]
    return CLUSTER_KEY


def export(storage, start: float, end: float, directory: Path) -> dict[str, int]:
    """Write the four files of [start, end] into `directory`; the entries of each."""
    directory.mkdir(parents=True, exist_ok=True)
    span = Span(math.ceil(start), math.floor(end), BUCKET)
    containers: dict[str, list[Entity]] = defaultdict(list)
    for container in storage.entities(EntityKind.CONTAINER, span=span):
        containers[container.identity["uid"]].append(container)
    written = {}
    for name, kind in FILES.items():
        groups = [storage.entities(kind, span=span)]
        if kind is EntityKind.NODE:
            groups.append(storage.entities(EntityKind.CLUSTER, span=span))
        path = directory / name
        with open(f"{path}.part", "wb") as out:
            out.write(b"{")
            count = 0
            keyed = (item for group in groups for item in _keyed(storage, group, span, containers))
            for at, (key, buckets) in enumerate(keyed):
                count += sum(map(len, buckets.values()))
                out.write(b"," * (at > 0) + msgspec.json.encode(key) + b":")
                out.write(msgspec.json.encode(buckets))
            out.write(b"}\n")
        Path(f"{path}.part").replace(path)
        written[name] = count
    return written


def _keyed(storage, entities: list[Entity], span: Span, containers) -> Iterator[tuple]:
    """(key, its entries by bucket) of entities of one kind, in their order (those of a key
    next to each other), their series read AT_ONCE entities at a time."""
    key, buckets = None, defaultdict(list)
    for at in range(0, len(entities), AT_ONCE):
        batch = entities[at : at + AT_ONCE]
        inside = [c for entity in batch for c in containers.get(entity.identity.get("uid"), [])]
        found = _entries(storage, inside, span)
        inside_entries = dict(zip((c.id for c in inside), found, strict=True))
        for entity, entries in zip(batch, _entries(storage, batch, span), strict=True):
            if key_of(entity.kind, entity.identity) != key:
                if key is not None:
                    yield key, _in_order(buckets)
                key, buckets = key_of(entity.kind, entity.identity), defaultdict(list)
            mine = containers.get(entity.identity.get("uid"), [])
            for bucket, entry in entries.items():
                if entity.kind is EntityKind.POD:
                    entry["containers"] = [
                        {"name": c.identity["name"], "container_id": c.identity["container_id"]}
                        | {"metrics": inside_entries[c.id][bucket]["metrics"]}
                        for c in mine
                        if bucket in inside_entries[c.id]
                    ]
                buckets[str(bucket)].append(entry)
    if key is not None:
        yield key, _in_order(buckets)


def _in_order(buckets: dict[str, list]) -> dict[str, list]:
    return dict(sorted(buckets.items(), key=lambda item: int(item[0])))


def _entries(storage, entities: list[Entity], span: Span) -> list[dict[int, dict]]:
    """Per entity (all of one kind), its entry of each bucket with a value in the span."""
    if not entities:
        return []
    names = answered(entities[0].kind)
    found = []
    for entity, series in zip(entities, storage.series(entities, names, span), strict=True):
        entries = {}
        for step, bucket in enumerate(series["timestamps"]):
            values = [series[name][step] for name in names]
            metrics = as_latest(names, _rounded(names, values))
            metrics = {name: value for name, value in metrics.items() if value is not None}
            if not metrics:
                continue
            entry = dict(entity.identity) | {"timestamp": bucket}
            if entity.info:
                entry["info"] = entity.info
            entries[bucket] = entry | {"metrics": metrics}
        found.append(entries)
    return found


def _rounded(names: Sequence[str], values: list) -> list:
    """Integer metrics (bytes, counts) to the nearest integer: a rollup's average is not one."""
    return [
        round(value) if value is not None and name in INTEGER_COLUMNS else value
        for name, value in zip(names, values, strict=True)
    ]


@dataclass
class Seed:
    """What a directory holds: the payloads of its nodes and pods, and its entries counted."""

    payloads: list
    entries: dict[str, int]


def read(directory: Path, oldest: float, newest: float) -> Seed:
    """The files of a directory, validated whole: buckets from `oldest` to `newest` only.
    SeedError names the file, key and bucket of the first fault."""
    documents = {}
    for name in FILES:
        path = directory / name
        if path.exists():
            try:
                documents[name] = msgspec.json.decode(path.read_bytes())
            except msgspec.DecodeError as error:
                raise SeedError(f"{name}: not JSON: {error}") from None
    if "nodes.json" not in documents and "pods.json" not in documents:
        raise SeedError(f"{directory}: neither nodes.json nor pods.json is there")
    entries: dict[str, int] = {}
    reports: dict[tuple[str, int], dict] = {}  # (node, bucket): the payload's parts
    where: dict[tuple[str, int], list] = {}  # of each payload's pods: (file, key, bucket)
    for name, document in documents.items():
        kind = FILES[name]
        entries[name] = 0
        for key, bucket, entry in _walk(name, document, oldest, newest):
            entries[name] += 1
            entity_kind = (
                EntityKind.CLUSTER if kind is EntityKind.NODE and key == CLUSTER_KEY else kind
            )
            identity, metrics = _parts(name, key, bucket, entry, entity_kind)
            if entity_kind is EntityKind.NODE:
                report = reports.setdefault((key, bucket), {"pods": {}})
                report["node"] = (metrics, entry.get("info") or {})
            elif entity_kind is EntityKind.POD:
                node = identity.get("node")
                if not node:
                    raise SeedError(f"{name}: key {key!r}, bucket {bucket}: the entry has no node")
                report = reports.setdefault((node, bucket), {"pods": {}})
                report["pods"][identity.get("uid")] = (identity, metrics, entry)
                where.setdefault((node, bucket), []).append((name, key, bucket))
    payloads = [
        _payload(node, bucket, report, where.get((node, bucket), []))
        for (node, bucket), report in sorted(reports.items(), key=lambda item: item[0][::-1])
    ]
    return Seed(payloads, entries)


def _walk(name: str, document: object, oldest: float, newest: float) -> Iterator[tuple]:
    """(key, bucket, entry) of a file's last entry of each key and bucket, checked."""
    if not isinstance(document, dict):
        raise SeedError(f"{name}: not an object of keys")
    for key, buckets in document.items():
        if not isinstance(buckets, dict):
            raise SeedError(f"{name}: key {key!r}: not an object of buckets")
        for text, listed in buckets.items():
            where = f"{name}: key {key!r}, bucket {text!r}"
            if not text.isdigit() or int(text) % BUCKET:
                raise SeedError(f"{where}: not the start of a 10 s bucket in unix seconds")
            bucket = int(text)
            if bucket < oldest:
                raise SeedError(
                    f"{where}: older than the longest retention the store keeps (it starts"
                    f" at {int(oldest)})"
                )
            if bucket > newest:
                raise SeedError(f"{where}: in the future")
            if not isinstance(listed, list) or not listed:
                raise SeedError(f"{where}: not a list of entries")
            by_entity = {}
            for entry in listed:
                if not isinstance(entry, dict):
                    raise SeedError(f"{where}: an entry is not an object")
                by_entity[entry.get("uid")] = entry  # the last of an entity's counts
            for entry in by_entity.values():
                yield key, bucket, entry


def _parts(name: str, key: str, bucket: int, entry: dict, kind: EntityKind) -> tuple:
    """An entry's identity and metrics, checked against its kind and key."""
    where = f"{name}: key {key!r}, bucket {bucket}"
    names = set(answered(kind))
    identity = {field: entry[field] for field in IDENTITY[kind] if field in entry}
    metrics = entry.get("metrics")
    if metrics is None:  # the original system's: the metrics beside the identity
        metrics = {k: v for k, v in entry.items() if k not in identity and k not in _ENTRY_FIELDS}
    if not isinstance(metrics, dict):
        raise SeedError(f"{where}: metrics is not an object")
    unknown = sorted(set(metrics) - names)
    if unknown:
        raise SeedError(f"{where}: {unknown[0]!r} is not a metric of {kind.value}s")
    for metric, value in metrics.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SeedError(f"{where}: {metric}: {value!r} is not a number")
    identity = _named(kind, key) | identity  # what the entry does not say, its key does
    if kind is not EntityKind.CLUSTER and key_of(kind, identity) != key:
        raise SeedError(f"{where}: the entry's identity does not match its key")
    return identity, metrics


def _named(kind: EntityKind, key: str) -> dict:
    """The identity fields a key gives."""
    if kind is EntityKind.CLUSTER:
        return {}
    if kind is EntityKind.NODE:
        return {"node": key}
    if kind is EntityKind.NAMESPACE:
        return {"namespace": key}
    namespace, _, name = key.partition("/")
    return {"namespace": namespace, "name": name}


def _payload(node: str, bucket: int, report: dict, where: list):
    """The payload of a node's bucket, decoded as ingest decodes one: SeedError naming the
    entry at fault."""
    metrics, info = report.get("node", ({}, {}))
    node_metrics = {k: v for k, v in metrics.items() if k != "cpu_capacity_cores"}
    pods = []
    for identity, pod_metrics, entry in report["pods"].values():
        pod = {
            field: identity.get(field) for field in wire.Pod.__struct_fields__ if field in identity
        }
        pod |= {"qos": (entry.get("info") or {}).get("qos")} | pod_metrics
        pod["containers"] = [
            {"id": c.get("container_id"), "name": c.get("name")} | (c.get("metrics") or {})
            for c in entry.get("containers") or []
        ]
        pods.append(pod)
    body = {
        "schema": 1,
        "node": node,
        "timestamp": bucket,
        "interval": float(BUCKET),
        "node_info": {field: info.get(field) for field in NODE_INFO},
        "node_metrics": node_metrics,
        "pods": pods,
    }
    try:
        (decoded,), ignored = wire.decode_reporting(json.dumps(body).encode())
        if ignored:
            raise msgspec.ValidationError(f"{ignored[0]} is not a metric - at `$`")
        return decoded
    except msgspec.ValidationError as error:
        path = str(error).rpartition(" - at `")[2].rstrip("`")
        blame = f"nodes.json: key {node!r}, bucket {bucket}"
        if path.startswith("$.pods["):
            at = int(path[len("$.pods[") :].partition("]")[0])
            name, key, _ = where[at]
            blame = f"{name}: key {key!r}, bucket {bucket}"
        raise SeedError(f"{blame}: {error}") from None


def write(storage, payloads: list, at_once: int = WRITE_AT_ONCE) -> int:
    """Store payloads a few at a time, oldest first; the samples stored."""
    return sum(
        storage.write(payloads[at : at + at_once]) for at in range(0, len(payloads), at_once)
    )
