"""GET /openapi.json: an OpenAPI 3.1 description built from the application's own routes,
the payload schema and the metric catalogue."""

from dataclasses import fields

import msgspec
from flask import Blueprint, Flask, current_app

from cloudmon import payload as wire
from cloudmon.durations import PATTERN as DURATION_PATTERN
from cloudmon.metrics import BY_NAME
from cloudmon.rightsizing import KNOB_HELP, Strategy
from cloudmon.server import rightsize
from cloudmon.server.query import MAX_LIMIT, ROUTES
from cloudmon.server.timeparams import TIME_PARAMETERS
from cloudmon.storage.base import AGGREGATIONS
from cloudmon.storage.model import EXTRA_HELP, IDENTITY, EntityKind, answered

bp = Blueprint("openapi", __name__)

_TIME_DOC = {
    "window": "a series from now minus this duration to now: 30s, 5m, 1h, 7d",
    "start": "a series from this time (unix seconds or RFC 3339)",
    "end": "the end of the series (unix seconds or RFC 3339); default now",
    "step": (
        "the series' resolution, a multiple of 10 s; default: the smallest multiple of the"
        " coarsest stored resolution (10 s, 1 min, 1 h) giving 100 to 1000 points"
    ),
    "agg": "how values inside a step combine",
    "metrics": "comma-separated metric names; default all",
}
_ERROR = {"$ref": "#/components/schemas/Error"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}


def _answer(description: str, schema: dict | None = None, media: str = "application/json"):
    answer: dict = {"description": description}
    if schema is not None:
        answer["content"] = {media: {"schema": schema}}
    return answer


def _errors(*statuses: int) -> dict:
    text = {
        400: "a malformed payload or parameter",
        401: "a missing or wrong token",
        404: "an unknown entity",
        413: "a body over the limit",
        415: "a body that is not JSON",
        503: "not ready",
    }
    return {str(status): _answer(text[status], _ERROR) for status in statuses}


def _entity_schema(kind: EntityKind) -> dict:
    names = answered(kind)
    metric_props = {name: {**_NULLABLE_NUMBER, "description": _help(name)} for name in names}
    series_props = {"timestamps": {"type": "array", "items": {"type": "integer"}}}
    series_props |= {name: {"type": "array", "items": _NULLABLE_NUMBER} for name in names}
    props = {field: {"type": ["string", "null"]} for field in IDENTITY[kind]}
    props |= {
        "timestamp": {"type": ["integer", "null"], "description": "start of the newest bucket"},
        "metrics": {"type": "object", "properties": metric_props},
        "series": {"type": "object", "properties": series_props},
    }
    if kind in (EntityKind.NODE, EntityKind.POD):
        props["info"] = {"type": "object"}
    return {"type": "object", "properties": props, "required": [*IDENTITY[kind], "timestamp"]}


def _help(name: str) -> str:
    metric = BY_NAME.get(name)
    return f"{metric.help} ({metric.unit or 'count'})" if metric else EXTRA_HELP[name]


def _parameters(rule, route) -> list[dict]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in sorted(rule.arguments)
    ]
    if route is None:
        return params
    for name in TIME_PARAMETERS:
        schema = {"type": "string"}
        if name == "agg":
            schema = {"type": "string", "enum": list(AGGREGATIONS), "default": "avg"}
        elif name in ("window", "step"):
            schema = {"type": "string", "pattern": DURATION_PATTERN}
        params.append(
            {"name": name, "in": "query", "description": _TIME_DOC[name], "schema": schema}
        )
    if route.many:
        names = "|".join(answered(route.kind))
        params += [
            {
                "name": "sort",
                "in": "query",
                "description": "order by a metric's latest value: METRIC ascending, -METRIC "
                "descending; entities without a value last",
                "schema": {"type": "string", "pattern": f"^-?({names})$"},
            },
            {
                "name": "limit",
                "in": "query",
                "description": "only the first N entities (after sort)",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            },
        ]
    for name in route.filters:
        params.append(
            {
                "name": name,
                "in": "query",
                "description": f"only this {name}",
                "schema": {"type": "string"},
            }
        )
    return params


def _rightsize_parameters(rule) -> list[dict]:
    """Those of GET /api/rightsize...: the window and the strategy's knobs."""
    params = _parameters(rule, None)
    for name in rightsize.TIME_PARAMETERS:
        schema = {"type": "string"}
        if name == "window":
            schema |= {"pattern": DURATION_PATTERN, "default": "7d"}
        params.append(
            {"name": name, "in": "query", "description": _TIME_DOC[name], "schema": schema}
        )
    if not rule.arguments:
        params.append(
            {
                "name": "namespace",
                "in": "query",
                "description": "only this namespace",
                "schema": {"type": "string"},
            }
        )
    for knob in fields(Strategy):
        number = "integer" if knob.type is int else "number"
        schema = {"type": number if knob.default is not None else [number, "null"]}
        params.append(
            {
                "name": knob.name,
                "in": "query",
                "description": KNOB_HELP[knob.name],
                "schema": schema | {"minimum": 0, "default": knob.default},
            }
        )
    return params


def _openapi_path(rule) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = path.replace(f"<{name}>", f"{{{name}}}")
    return path


def describe(app: Flask) -> dict:
    """The OpenAPI document of an application."""
    (payload_schema,), components = msgspec.json.schema_components(
        [wire.Payload | list[wire.Payload]], ref_template="#/components/schemas/{name}"
    )
    for variant in payload_schema["anyOf"]:
        if variant.get("type") == "array":
            variant["minItems"] = 1  # an empty array holds no payload: 400
    components["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    }
    for kind in EntityKind:
        components[f"{kind.title()}Answer"] = _entity_schema(kind)
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        summary = (view.__doc__ or "").strip()
        item = paths.setdefault(_openapi_path(rule), {})
        route = ROUTES.get(rule.rule)
        if route is not None:
            entity = {"$ref": f"#/components/schemas/{route.kind.title()}Answer"}
            schema = (
                {"type": "object", "properties": {"items": {"type": "array", "items": entity}}}
                if route.many
                else entity
            )
            item["get"] = {
                "summary": summary,
                "parameters": _parameters(rule, route),
                "responses": {"200": _answer("the answer", schema), **_errors(400, 401, 404)},
            }
        elif rule.rule.startswith("/api/rightsize"):
            item["get"] = {
                "summary": summary,
                "parameters": _rightsize_parameters(rule),
                "responses": {
                    "200": _answer(
                        "the workloads' usage, recommendations and findings", {"type": "object"}
                    ),
                    **_errors(400, 401, 404),
                    "501": _answer(
                        "a store that keeps no usage (right-sizing needs sqlite://)", _ERROR
                    ),
                },
            }
        elif rule.rule == "/api/ingest":
            item["post"] = {
                "summary": summary,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": payload_schema}},
                },
                "responses": {
                    "200": _answer("stored", _INGEST_ANSWER),
                    **_errors(400, 401, 413, 415),
                },
            }
        elif rule.rule == "/metrics":
            item["get"] = {
                "summary": summary,
                "responses": {"200": _answer("the exposition", {"type": "string"}, "text/plain")},
            }
        elif rule.rule == "/":
            item["get"] = {
                "summary": summary,
                "responses": {"200": _answer("the dashboard", {"type": "string"}, "text/html")},
            }
        elif rule.arguments:  # a dashboard asset by name
            item["get"] = {
                "summary": summary,
                "parameters": _parameters(rule, None),
                "responses": {"200": {"description": "the file"}, **_errors(404)},
            }
        else:
            item["get"] = {
                "summary": summary,
                "responses": {"200": _answer("ok", {"type": "object"}), **_errors(503)},
            }
    return {
        "openapi": "3.1.0",
        "info": {"title": "cloudmon", "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
    }


_INGEST_ANSWER = {
    "type": "object",
    "required": ["payloads", "samples", "ignored_fields"],
    "properties": {
        "payloads": {"type": "integer", "description": "payloads stored"},
        "samples": {"type": "integer", "description": "metric values stored"},
        "ignored_fields": {
            "type": "array",
            "items": {"type": "string"},
            "description": "fields of the payloads this server does not know and did not "
            "store (`node_metrics.NAME`, `pods[].NAME`, `pods[].containers[].NAME`, ...)",
        },
    },
}


@bp.get("/openapi.json")
def openapi():
    """This OpenAPI description."""
    return describe(current_app)
