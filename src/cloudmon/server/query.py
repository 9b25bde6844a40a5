"""GET /api/...: the cluster, nodes, pods, namespaces and deployments, latest or as series."""

import time
from dataclasses import dataclass

import msgspec
from flask import Blueprint, Response, current_app, request

from cloudmon.server import auth, timeparams
from cloudmon.server.errors import ApiError
from cloudmon.server.state import state
from cloudmon.storage.base import Entity, bucket_of
from cloudmon.storage.model import KINDS, EntityKind, answered, columns

bp = Blueprint("api", __name__, url_prefix="/api")

ACTIVE_SECONDS = 30  # a list without time parameters shows what reported this recently
LIST_PARAMETERS = ("sort", "limit")  # what a list endpoint takes besides the time parameters
MAX_LIMIT = 100_000
# Entities of a list read, encoded and sent at a time: a series of every pod of a large
# cluster takes hundreds of MiB as Python objects, tens as JSON.
ITEMS_AT_ONCE = 200


@dataclass(frozen=True)
class Route:
    """What a GET /api route answers: a kind of entity, one or a list, and its filters."""

    kind: EntityKind
    many: bool
    filters: tuple[str, ...] = ()


ROUTES: dict[str, Route] = {}


def _get(rule: str, kind: EntityKind, many: bool, filters: tuple[str, ...] = ()):
    def decorate(view):
        ROUTES[bp.url_prefix + rule] = Route(kind, many, filters)
        return bp.get(rule)(view)

    return decorate


@bp.before_request
def _guard() -> None:
    auth.require(current_app.config["CLOUDMON_READ_TOKEN"])
    request.environ["cloudmon.started"] = time.perf_counter()


@bp.after_request
def _timed(response: Response) -> Response:
    started = request.environ.get("cloudmon.started")
    if started is None or request.url_rule is None:
        return response
    observe = state().query_seconds.labels(request.url_rule.rule).observe
    if response.is_streamed:  # a list: timed to its last byte
        response.call_on_close(lambda: observe(time.perf_counter() - started))
    else:
        observe(time.perf_counter() - started)
    return response


def _json(body) -> Response:
    return Response(msgspec.json.encode(body), mimetype="application/json")


def _query():
    route = ROUTES[request.url_rule.rule]
    kind, allowed_filters = route.kind, route.filters
    allowed = {*timeparams.TIME_PARAMETERS, *allowed_filters, *(LIST_PARAMETERS * route.many)}
    unknown = set(request.args) - allowed
    if unknown:
        raise ApiError(400, f"{sorted(unknown)[0]}: unknown parameter")
    for name, values in request.args.lists():
        if len(values) > 1:
            raise ApiError(400, f"{name}: given {len(values)} times; give it once")
    query = timeparams.parse(request.args, current_app.config["CLOUDMON_NOW"]())
    known = answered(kind)
    names = query.metrics or known
    for name in names:
        if name not in known:
            raise ApiError(400, f"metrics: {name!r} is not a metric of {KINDS[kind].plural}")
    return kind, query, names


def _items(storage, entities: list[Entity], query, names) -> list[dict]:
    latest = storage.latest(entities, names)
    series = storage.series(entities, names, query.span) if query.span else None
    items = []
    for i, entity in enumerate(entities):
        item = dict(entity.identity)
        if entity.info:
            item["info"] = entity.info
        item.update(latest[i])
        if series is not None:
            item["series"] = series[i]
        items.append(item)
    return items


def _list(filters: dict, latest_since: int | None = None) -> Response:
    """A list; without time parameters of what has data since `latest_since`, by default
    of what reported in the last ACTIVE_SECONDS."""
    kind, query, names = _query()
    order, limit = _order(kind), _limit()
    for name in ROUTES[request.url_rule.rule].filters:
        if name in request.args:
            filters[name] = request.args[name]
    since = None
    if query.span is None:
        since = latest_since
        if since is None:
            since = bucket_of(current_app.config["CLOUDMON_NOW"]() - ACTIVE_SECONDS)
    storage = state().storage
    entities = storage.entities(kind, filters, since=since, span=query.span)
    if order is not None:
        metric, descending = order
        values = [latest["metrics"][metric] for latest in storage.latest(entities, [metric])]
        present = [i for i, value in enumerate(values) if value is not None]
        present.sort(key=values.__getitem__, reverse=descending)
        missing = [i for i, value in enumerate(values) if value is None]
        entities = [entities[i] for i in present + missing]
    return _encoded_list(entities[:limit], query, names)


def _encoded_list(entities: list[Entity], query, names) -> Response:
    """{"items": [...]}, its items read and encoded ITEMS_AT_ONCE at a time, so that a worker
    holds one batch of a large list at a time. The first batch is made before the answer
    starts, so that a store that cannot answer is answered with its error; a failure after
    that cuts the answer short."""
    storage = state().storage

    def encoded(at: int) -> bytes:
        items = _items(storage, entities[at : at + ITEMS_AT_ONCE], query, names)
        return msgspec.json.encode(items)[1:-1]  # without the list's brackets

    first = encoded(0)

    def parts():
        yield b'{"items":[' + first
        for at in range(ITEMS_AT_ONCE, len(entities), ITEMS_AT_ONCE):
            yield b"," + encoded(at)
        yield b"]}"

    return Response(parts(), mimetype="application/json")


def _order(kind: EntityKind) -> tuple[str, bool] | None:
    """`sort=METRIC` (ascending) or `sort=-METRIC` (descending) by the latest values; entities
    without a value come last, ties in the list's own order."""
    text = request.args.get("sort")
    if text is None:
        return None
    metric = text.removeprefix("-")
    if metric not in columns(kind):
        raise ApiError(400, f"sort: {metric!r} is not a metric of {KINDS[kind].plural}")
    return metric, text.startswith("-")


def _limit() -> int | None:
    """`limit=N`: only the first N entities (after sort)."""
    text = request.args.get("limit")
    if text is None:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiError(400, f"limit: {text!r} is not a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _find(kind: EntityKind, filters: dict, what: str) -> Entity:
    entities = state().storage.entities(kind, filters)
    if not entities:
        raise ApiError(404, f"{what}: not found")
    return max(entities, key=lambda entity: entity.last_bucket or 0)


def _one(filters: dict, what: str) -> Response:
    kind, query, names = _query()
    return _json(_items(state().storage, [_find(kind, filters, what)], query, names)[0])


@_get("/cluster", EntityKind.CLUSTER, False)
def cluster():
    """The whole cluster."""
    _, query, names = _query()
    entities = state().storage.entities(EntityKind.CLUSTER) or [
        Entity(EntityKind.CLUSTER, 0, {}, None)
    ]
    return _json(_items(state().storage, entities[:1], query, names)[0])


@_get("/nodes", EntityKind.NODE, True)
def nodes():
    """The nodes."""
    return _list({})


@_get("/nodes/<node>", EntityKind.NODE, False)
def node(node: str):
    """One node."""
    return _one({"name": node}, f"node {node!r}")


@_get("/nodes/<node>/pods", EntityKind.POD, True, ("namespace", "deployment"))
def node_pods(node: str):
    """The pods of one node."""
    _find(EntityKind.NODE, {"name": node}, f"node {node!r}")
    return _list({"node": node})


@_get("/pods", EntityKind.POD, True, ("namespace", "node", "deployment"))
def pods():
    """The pods, filtered by namespace, node or deployment."""
    return _list({})


@_get("/pods/<namespace>/<pod>", EntityKind.POD, False)
def pod(namespace: str, pod: str):
    """One pod (the newest of that name)."""
    filters = {"namespace": namespace, "name": pod}
    return _one(filters, f"pod {namespace}/{pod}")


@_get("/pods/<namespace>/<pod>/containers", EntityKind.CONTAINER, True)
def pod_containers(namespace: str, pod: str):
    """The containers of one pod (the newest of that name); without time parameters those
    in the pod's newest bucket."""
    found = _find(EntityKind.POD, {"namespace": namespace, "name": pod}, f"pod {namespace}/{pod}")
    return _list({"uid": found.identity["uid"]}, latest_since=found.last_bucket)


@_get("/pods/<namespace>/<pod>/containers/<container>", EntityKind.CONTAINER, False)
def pod_container(namespace: str, pod: str, container: str):
    """One container of one pod (the newest pod of that name), by its name, or by its ID
    where the agent did not know its name."""
    found = _find(EntityKind.POD, {"namespace": namespace, "name": pod}, f"pod {namespace}/{pod}")
    filters = {"uid": found.identity["uid"], "key": container}
    return _one(filters, f"container {container!r} of pod {namespace}/{pod}")


@_get("/namespaces", EntityKind.NAMESPACE, True)
def namespaces():
    """The namespaces."""
    return _list({})


@_get("/namespaces/<namespace>", EntityKind.NAMESPACE, False)
def namespace(namespace: str):
    """One namespace."""
    return _one({"namespace": namespace}, f"namespace {namespace!r}")


@_get("/namespaces/<namespace>/pods", EntityKind.POD, True, ("node", "deployment"))
def namespace_pods(namespace: str):
    """The pods of one namespace."""
    _find(EntityKind.NAMESPACE, {"namespace": namespace}, f"namespace {namespace!r}")
    return _list({"namespace": namespace})


@_get("/namespaces/<namespace>/deployments", EntityKind.DEPLOYMENT, True)
def namespace_deployments(namespace: str):
    """The deployments of one namespace."""
    _find(EntityKind.NAMESPACE, {"namespace": namespace}, f"namespace {namespace!r}")
    return _list({"namespace": namespace})


@_get("/deployments", EntityKind.DEPLOYMENT, True, ("namespace",))
def deployments():
    """The deployments, filtered by namespace."""
    return _list({})


@_get("/deployments/<namespace>/<name>", EntityKind.DEPLOYMENT, False)
def deployment(namespace: str, name: str):
    """One deployment."""
    filters = {"namespace": namespace, "name": name}
    return _one(filters, f"deployment {namespace}/{name}")


@_get("/deployments/<namespace>/<name>/pods", EntityKind.POD, True, ("node",))
def deployment_pods(namespace: str, name: str):
    """The pods of one deployment."""
    what = f"deployment {namespace}/{name}"
    _find(EntityKind.DEPLOYMENT, {"namespace": namespace, "name": name}, what)
    return _list({"namespace": namespace, "deployment": name})
