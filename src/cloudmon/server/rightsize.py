"""GET /api/rightsize: every workload's usage against its requests and limits, with
recommendations and findings (`rightsizing`), from the store's usage sketches; and
/api/rightsize/<namespace>/<kind>/<name>: one workload, with each of its pods."""

from collections import Counter, defaultdict
from dataclasses import fields, replace

import msgspec
import numpy as np
from flask import Blueprint, Response, current_app, g, request

from cloudmon import rightsizing
from cloudmon.server import auth, timeparams
from cloudmon.server.errors import ApiError
from cloudmon.server.state import state
from cloudmon.storage.base import BUCKET, Entity, Span, UsageHistory, bucket_of
from cloudmon.storage.model import EntityKind
from cloudmon.storage.usage import ACCURACY

bp = Blueprint("rightsize", __name__, url_prefix="/api")

DEFAULT_WINDOW = 7 * 86400
TIME_PARAMETERS = ("window", "start", "end")
KNOBS = tuple(knob.name for knob in fields(rightsizing.Strategy))
CURRENT = ("cpu_request_cores", "cpu_limit_cores", "memory_request_bytes", "memory_limit_bytes")
REQUESTS = ("cpu_request_cores", "memory_request_bytes")
# A container the store holds no day of usage of yet (its first hour not over).
NO_USAGE = rightsizing.Usage((0, 0), (None,) * 4, (None,) * 3, None, None, None, None)
RUNNING = 60  # seconds: a workload's pods seen this close to its newest are its replicas now


@bp.before_request
def _guard() -> None:
    auth.require(current_app.config["CLOUDMON_READ_TOKEN"])


@bp.get("/rightsize")
def workloads():
    """Every workload (of a namespace: namespace=) over a window (default 7d): its usage
    against its requests and limits per container, recommendations, findings and their
    sums per namespace and for the cluster."""
    start, end, strategy = _parameters(("namespace",))
    namespace = request.args.get("namespace")
    autoscalers, unknown = _autoscalers()
    items = _items(start, end, strategy, autoscalers, namespace=namespace)
    by_namespace = defaultdict(list)
    for item in items:
        by_namespace[item["namespace"]].append(item)
    summary = {
        "cluster": rightsizing.totals(items),
        "namespaces": {name: rightsizing.totals(found) for name, found in by_namespace.items()},
    }
    body = _head(start, end, strategy, unknown) | {"summary": summary, "items": items}
    return Response(msgspec.json.encode(body), mimetype="application/json")


@bp.get("/rightsize/<namespace>/<kind>/<name>")
def workload(namespace: str, kind: str, name: str):
    """One workload (kind: Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet or
    Pod) over a window (default 7d), with each of its pods' usage."""
    start, end, strategy = _parameters(())
    autoscalers, unknown = _autoscalers()
    items = _items(start, end, strategy, autoscalers, namespace=namespace, workload=(kind, name))
    if not items:
        raise ApiError(404, f"workload {kind} {namespace}/{name}: no usage in the window")
    body = _head(start, end, strategy, unknown, _exact(start)) | items[0]
    return Response(msgspec.json.encode(body), mimetype="application/json")


def _parameters(filters: tuple[str, ...]) -> tuple[float, float, rightsizing.Strategy]:
    allowed = {*TIME_PARAMETERS, *KNOBS, *filters}
    unknown = set(request.args) - allowed
    if unknown:
        raise ApiError(400, f"{sorted(unknown)[0]}: unknown parameter")
    now = g.now = current_app.config["CLOUDMON_NOW"]()  # the request's one moment
    span = timeparams.parse(request.args, now).span
    start, end = (now - DEFAULT_WINDOW, now) if span is None else (span.start, span.end)
    try:
        strategy = rightsizing.Strategy.of(request.args)
    except ValueError as error:
        raise ApiError(400, str(error)) from None
    return start, end, strategy


def _exact(start: float) -> bool:
    """Whether a window's percentiles are exact: those of one workload, where the store still
    holds the raw samples of the whole window."""
    first = -(-start // BUCKET) * BUCKET  # the window's first bucket
    return first >= bucket_of(g.now - current_app.config["CLOUDMON_RETENTION"][BUCKET])


def _exactly(entities, start, end, strategy, sketched: list) -> tuple[list, np.ndarray]:
    """The usages of entities with their percentiles, maxima and minutes taken exactly from
    the 1 min figures the store answers (each minute's average CPU, its largest working set),
    the counters' increases from the sketches; and each one's CPU at the percentile."""
    storage = _store()
    cpu = storage.series(entities, ["cpu_cores"], Span(start, end, 60, "avg"))
    memory = storage.series(entities, ["memory_working_set_bytes"], Span(start, end, 60, "max"))
    found, at_percentile = [], []
    for usage, cpu_series, memory_series in zip(sketched, cpu, memory, strict=True):
        cores = _numbers(cpu_series["cpu_cores"])
        memory_bytes = _numbers(memory_series["memory_working_set_bytes"])
        # The 100th percentile is the largest value.
        *cpu_figures, wanted = _percentiles(cores, (50, 95, 99, 100, strategy.cpu_percentile))
        found.append(
            replace(
                usage,
                minutes=(len(cores), len(memory_bytes)),
                cpu=tuple(cpu_figures),
                memory=_percentiles(memory_bytes, (50, 95, 100)),
            )
        )
        at_percentile.append(np.nan if wanted is None else wanted)
    return found, np.array(at_percentile)


def _numbers(values: list) -> np.ndarray:
    """The values of a series that are there."""
    return np.array([value for value in values if value is not None], dtype=float)


def _percentiles(values: np.ndarray, qs) -> tuple:
    """numpy's percentiles (method "lower": a value that was), None each where there is none."""
    if not len(values):
        return (None,) * len(qs)
    return _figures(np.percentile(values, qs, method="lower"))


def _head(start, end, strategy: rightsizing.Strategy, unknown: str | None, exact=False) -> dict:
    """What an answer is of: its window, strategy, whether its percentiles are exact and
    whether the autoscalers are known (`unknown`: why not)."""
    return {
        "start": start,
        "end": end,
        "percentiles": "exact" if exact else "sketched",
        "accuracy": 0.0 if exact else ACCURACY,
        "strategy": strategy.as_dict(),
        "autoscalers": {"known": unknown is None, "reason": unknown},
    }


def _autoscalers():
    """The autoscalers by workload and None, or None and why they are unknown."""
    source = current_app.config["CLOUDMON_AUTOSCALERS"]
    if source is None:
        return None, "the server runs outside a cluster (no service account)"
    return source.lookup()


def _store() -> UsageHistory:
    storage = state().storage
    if not isinstance(storage, UsageHistory):
        raise ApiError(
            501, "right-sizing needs the embedded store (sqlite://): this store keeps no usage"
        )
    return storage


def _workload_of(pod: Entity) -> tuple[str, str, str]:
    identity = pod.identity
    kind, name = identity.get("workload_kind"), identity.get("workload")
    if not kind or not name:
        kind, name = "Pod", identity["name"]
    return identity["namespace"], kind, name


def _items(start, end, strategy, autoscalers, namespace=None, workload=None) -> list[dict]:
    """The workloads' items, ordered by namespace, kind and name (`autoscalers` by workload,
    None where unknown)."""
    storage = _store()
    since = bucket_of(start)
    filters = {} if namespace is None else {"namespace": namespace}
    # A pod or container the agent had no name for belongs to no workload a patch could reach.
    pods = [
        pod
        for pod in storage.entities(EntityKind.POD, filters, since=since)
        if pod.identity["namespace"] is not None
        and pod.identity["name"] is not None
        and (workload is None or _workload_of(pod)[1:] == workload)
    ]
    owner = {pod.identity["uid"]: _workload_of(pod) for pod in pods}
    containers = [
        container
        for container in storage.entities(EntityKind.CONTAINER, filters, since=since)
        if container.identity["uid"] in owner and container.identity["name"] is not None
    ]
    usage_of = _container_usages(containers, start, end, strategy, exact=workload is not None)
    groups: dict[tuple, dict[str | None, list[Entity]]] = defaultdict(lambda: defaultdict(list))
    for container in containers:  # those without a day of usage yet too: not enough data
        groups[owner[container.identity["uid"]]][container.identity["name"]].append(container)
    current = _current_of_newest(groups, containers, pods)
    items = []
    for key in sorted(groups):
        item = _item(key, groups[key], usage_of, current, strategy)
        autoscaler = None if autoscalers is None else autoscalers.get(key)
        item["autoscaler"] = autoscaler
        if autoscaler is not None:
            for container in item["containers"]:
                container["autoscaling"] = rightsizing.autoscaling(
                    autoscaler, container["name"], container
                )
        item["patch"] = rightsizing.patch(item)
        if workload is not None:
            item["pods_usage"] = _pods(start, end, strategy, pods)
        items.append(item)
    return items


def _container_usages(containers, start, end, strategy, exact: bool) -> dict:
    """Each container's usage and its CPU at the strategy's percentile, by its id (exact
    where `exact` and the store holds the window's raw samples), for those the store holds a
    day of usage of."""
    storage = _store()
    ids = [container.id for container in containers] if exact else None
    found, days = storage.usage(EntityKind.CONTAINER, start, end, ids)
    usages, at_percentile = _usages(days, strategy)
    if exact and _exact(start):
        by_id = {container.id: container for container in containers}
        entities = [by_id[eid] for eid in found]
        usages, at_percentile = _exactly(entities, start, end, strategy, usages)
    return {
        eid: (usage, float(wanted))
        for eid, usage, wanted in zip(found, usages, at_percentile, strict=True)
    }


def _current_of_newest(groups: dict, containers: list[Entity], pods: list[Entity]) -> dict:
    """The current requests and limits of each workload container's newest replica, by the
    workload and the container's name."""
    keys = [(key, name) for key, by_name in groups.items() for name in by_name]
    newest = [max(groups[key][name], key=lambda c: c.last_bucket or 0) for key, name in keys]
    alone = {
        uid for uid, count in Counter(c.identity["uid"] for c in containers).items() if count == 1
    }
    by_uid = {pod.identity["uid"]: pod for pod in pods}
    return dict(zip(keys, _current(newest, by_uid, alone), strict=True))


def _item(key: tuple, by_name: dict, usage_of: dict, current: dict, strategy) -> dict:
    """One workload's item: its pods and replicas, and each container's figures."""
    namespace, kind, name = key
    members = [c for found in by_name.values() for c in found]
    last = max(c.last_bucket or 0 for c in members)
    running = {c.identity["uid"] for c in members if (c.last_bucket or 0) >= last - RUNNING}
    item = {
        "namespace": namespace,
        "workload_kind": kind,
        "workload": name,
        "pods": len({c.identity["uid"] for c in members}),
        "replicas": len(running),
        "containers": [],
    }
    for container_name in sorted(by_name, key=lambda n: (n is None, n or "")):
        replicas = by_name[container_name]
        found = [usage_of.get(c.id, (NO_USAGE, np.nan)) for c in replicas]
        figures = rightsizing.recommend(
            [usage for usage, _ in found],
            [wanted for _, wanted in found],
            current[key, container_name],
            len(running),
            strategy,
        )
        item["containers"].append({"name": container_name} | figures)
    return item


def _current(containers: list[Entity], pods: dict[str, Entity], alone: set[str]) -> list[dict]:
    """Each container's newest requests and limits, None where unset; for a pod's only
    container (its pod's uid in `alone`), its pod's requests where the agent knew only those
    (from crictl, a pod's CPU request is its sandbox's CPU shares: its containers' are not
    told)."""
    found = [
        dict(zip(CURRENT, (row["metrics"][name] for name in CURRENT), strict=True))
        for row in _store().latest(containers, CURRENT)
    ]
    lone = [
        (at, pods[container.identity["uid"]])
        for at, container in enumerate(containers)
        if container.identity["uid"] in alone and None in (found[at][name] for name in REQUESTS)
    ]
    latest = _store().latest([pod for _, pod in lone], REQUESTS)
    for (at, _), row in zip(lone, latest, strict=True):
        for name in REQUESTS:
            if found[at][name] is None:
                found[at][name] = row["metrics"][name]
    return found


def _pods(start, end, strategy, pods: list[Entity]) -> list[dict]:
    """Each pod's own usage over the window."""
    found, days = _store().usage(EntityKind.POD, start, end, [pod.id for pod in pods])
    usages, _ = _usages(days, strategy)
    by_id = {pod.id: pod for pod in pods}
    if _exact(start):
        usages, _ = _exactly([by_id[eid] for eid in found], start, end, strategy, usages)
    answer = []
    for eid, usage in zip(found, usages, strict=True):
        identity = by_id[eid].identity
        answer.append(
            {"name": identity["name"], "uid": identity["uid"], "node": identity["node"]}
            | rightsizing.pod_figures(usage)
        )
    return answer


def _usages(days, strategy: rightsizing.Strategy) -> tuple[list[rightsizing.Usage], np.ndarray]:
    """The figures of each row of summed `usage.Days`, and each row's CPU at the strategy's
    percentile."""
    qs = (*rightsizing.CPU_QUANTILES, strategy.cpu_percentile / 100)
    # A bucket's middle may lie past the largest value in it, which is kept exactly.
    cpu = np.fmin(days.quantiles(0, qs), days.maxima[:, :1])
    memory = np.fmin(days.quantiles(1, rightsizing.MEMORY_QUANTILES), days.maxima[:, 1:])
    points = np.stack([days.points(0), days.points(1)], axis=1).astype(int).tolist()
    increases = days.increases()
    found = []
    for row in range(days.size):
        periods, throttled, ooms, restarts = _figures(increases[row])
        found.append(
            rightsizing.Usage(
                tuple(points[row]),
                (*_figures(cpu[row, :3]), _figure(days.maxima[row, 0])),
                (*_figures(memory[row]), _figure(days.maxima[row, 1])),
                periods,
                throttled,
                ooms,
                restarts,
            )
        )
    return found, cpu[:, 3]


def _figure(value) -> float | None:
    """A number, None for NaN (none)."""
    return None if value != value else float(value)


def _figures(values) -> tuple:
    return tuple(_figure(value) for value in values)
