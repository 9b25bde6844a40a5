"""GET /api/...: the cluster, nodes, pods, namespaces and deployments, latest or as series."""

import time

import msgspec
from flask import Blueprint, Response, current_app, request

from cloudmon.server import auth, timeparams
from cloudmon.server.errors import ApiError
from cloudmon.server.state import state
from cloudmon.storage.base import Entity, EntityKind, bucket_of, columns

bp = Blueprint("api", __name__, url_prefix="/api")

ACTIVE_SECONDS = 30  # a list without time parameters shows what reported this recently
_PLURAL = {
    EntityKind.NODE: "nodes",
    EntityKind.POD: "pods",
    EntityKind.NAMESPACE: "namespaces",
    EntityKind.DEPLOYMENT: "deployments",
    EntityKind.CLUSTER: "cluster",
}


@bp.before_request
def _guard() -> None:
    auth.require(current_app.config["CLOUDMON_READ_TOKEN"])
    request.environ["cloudmon.started"] = time.perf_counter()


@bp.after_request
def _timed(response: Response) -> Response:
    started = request.environ.get("cloudmon.started")
    if started is not None and request.url_rule is not None:
        state().query_seconds.labels(request.url_rule.rule).observe(time.perf_counter() - started)
    return response


def _json(body) -> Response:
    return Response(msgspec.json.encode(body), mimetype="application/json")


def _query(kind: EntityKind, allowed_filters: tuple[str, ...] = ()):
    unknown = set(request.args) - set(timeparams.TIME_PARAMETERS) - set(allowed_filters)
    if unknown:
        raise ApiError(400, f"{sorted(unknown)[0]}: unknown parameter")
    query = timeparams.parse(request.args, current_app.config["CLOUDMON_NOW"]())
    known = columns(kind)
    names = query.metrics or known
    for name in names:
        if name not in known:
            raise ApiError(400, f"metrics: {name!r} is not a metric of {_PLURAL[kind]}")
    return query, names


def _items(entities: list[Entity], query, names) -> list[dict]:
    storage = state().storage
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


def _list(kind: EntityKind, filters: dict, allowed_filters: tuple[str, ...] = ()) -> Response:
    query, names = _query(kind, allowed_filters)
    for name in allowed_filters:
        if name in request.args:
            filters[name] = request.args[name]
    since = None
    if query.span is None:
        since = bucket_of(current_app.config["CLOUDMON_NOW"]() - ACTIVE_SECONDS)
    entities = state().storage.entities(kind, filters, since=since, span=query.span)
    return _json({"items": _items(entities, query, names)})


def _find(kind: EntityKind, filters: dict, what: str) -> Entity:
    entities = state().storage.entities(kind, filters)
    if not entities:
        raise ApiError(404, f"{what}: not found")
    return max(entities, key=lambda entity: entity.last_bucket or 0)


def _one(kind: EntityKind, filters: dict, what: str) -> Response:
    query, names = _query(kind)
    return _json(_items([_find(kind, filters, what)], query, names)[0])


@bp.get("/cluster")
def cluster():
    """The whole cluster."""
    query, names = _query(EntityKind.CLUSTER)
    entities = state().storage.entities(EntityKind.CLUSTER) or [
        Entity(EntityKind.CLUSTER, 0, {}, None)
    ]
    return _json(_items(entities[:1], query, names)[0])


@bp.get("/nodes")
def nodes():
    """The nodes."""
    return _list(EntityKind.NODE, {})


@bp.get("/nodes/<node>")
def node(node: str):
    """One node."""
    return _one(EntityKind.NODE, {"name": node}, f"node {node!r}")


@bp.get("/nodes/<node>/pods")
def node_pods(node: str):
    """The pods of one node."""
    _find(EntityKind.NODE, {"name": node}, f"node {node!r}")
    return _list(EntityKind.POD, {"node": node}, ("namespace", "deployment"))


@bp.get("/pods")
def pods():
    """The pods, filtered by namespace, node or deployment."""
    return _list(EntityKind.POD, {}, ("namespace", "node", "deployment"))


@bp.get("/pods/<namespace>/<pod>")
def pod(namespace: str, pod: str):
    """One pod (the newest of that name)."""
    filters = {"namespace": namespace, "name": pod}
    return _one(EntityKind.POD, filters, f"pod {namespace}/{pod}")


@bp.get("/namespaces")
def namespaces():
    """The namespaces."""
    return _list(EntityKind.NAMESPACE, {})


@bp.get("/namespaces/<namespace>")
def namespace(namespace: str):
    """One namespace."""
    return _one(EntityKind.NAMESPACE, {"namespace": namespace}, f"namespace {namespace!r}")


@bp.get("/namespaces/<namespace>/pods")
def namespace_pods(namespace: str):
    """The pods of one namespace."""
    _find(EntityKind.NAMESPACE, {"namespace": namespace}, f"namespace {namespace!r}")
    return _list(EntityKind.POD, {"namespace": namespace}, ("node", "deployment"))


@bp.get("/namespaces/<namespace>/deployments")
def namespace_deployments(namespace: str):
    """The deployments of one namespace."""
    _find(EntityKind.NAMESPACE, {"namespace": namespace}, f"namespace {namespace!r}")
    return _list(EntityKind.DEPLOYMENT, {"namespace": namespace})


@bp.get("/deployments")
def deployments():
    """The deployments, filtered by namespace."""
    return _list(EntityKind.DEPLOYMENT, {}, ("namespace",))


@bp.get("/deployments/<namespace>/<name>")
def deployment(namespace: str, name: str):
    """One deployment."""
    filters = {"namespace": namespace, "name": name}
    return _one(EntityKind.DEPLOYMENT, filters, f"deployment {namespace}/{name}")


@bp.get("/deployments/<namespace>/<name>/pods")
def deployment_pods(namespace: str, name: str):
    """The pods of one deployment."""
    what = f"deployment {namespace}/{name}"
    _find(EntityKind.DEPLOYMENT, {"namespace": namespace, "name": name}, what)
    return _list(EntityKind.POD, {"namespace": namespace, "deployment": name}, ("node",))
