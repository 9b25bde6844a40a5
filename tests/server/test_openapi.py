import pytest
from server_payloads import T0, container, payload, pod

from cloudmon.server.query import LIST_PARAMETERS, ROUTES
from cloudmon.server.timeparams import TIME_PARAMETERS
from cloudmon.storage.model import columns

VALUES = {
    "node": "n1",
    "namespace": "shop",
    "pod": "web-a",
    "name": "web",
    "deployment": "web",
    "container": "app",
}


@pytest.fixture
def doc(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json


@pytest.fixture
def stored(post):
    containers = [container("app", cpu_cores=0.25)]
    post(
        payload(
            "n1",
            T0 + 1,
            [pod("uid-a", "web-a", "shop", "web", cpu_cores=0.5, containers=containers)],
        )
    )


def real_routes(app):
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static":
            path = rule.rule.replace("<", "{").replace(">", "}")
            routes[path] = (rule, {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}})
    return routes


def query_routes(app):
    """(path, route, a URL of it) of each query route."""
    for path, (rule, _) in real_routes(app).items():
        route = ROUTES.get(rule.rule)
        if route is not None:
            url = path
            for name in rule.arguments:
                url = url.replace(f"{{{name}}}", VALUES[name])
            yield path, route, url


def test_documents_exactly_the_real_routes(app, doc):
    routes = real_routes(app)
    assert set(doc["paths"]) == set(routes)
    for path, (_, methods) in routes.items():
        assert set(doc["paths"][path]) == methods, path


def test_api_parameters_are_the_accepted_ones(app, doc):
    for path, (rule, _) in real_routes(app).items():
        route = ROUTES.get(rule.rule)
        if route is None:
            continue
        documented = [(p["name"], p["in"]) for p in doc["paths"][path]["get"]["parameters"]]
        expected = [(name, "path") for name in sorted(rule.arguments)]
        listing = LIST_PARAMETERS if route.many else ()
        expected += [(name, "query") for name in (*TIME_PARAMETERS, *listing, *route.filters)]
        assert documented == expected, path


def query_for(name, kind):
    return {
        "window": "window=1m",
        "start": f"start={T0}",
        "end": f"start={T0}&end={T0 + 10}",
        "step": "window=1m&step=20s",
        "agg": "window=1m&agg=max",
        "metrics": f"metrics={columns(kind)[0]}",
        "sort": f"sort=-{columns(kind)[0]}",
        "limit": "limit=1",
    }.get(name, f"{name}=x")


def test_every_documented_parameter_is_accepted(app, client, doc, stored):
    for path, route, url in query_routes(app):
        for param in doc["paths"][path]["get"]["parameters"]:
            if param["in"] == "query":
                response = client.get(f"{url}?{query_for(param['name'], route.kind)}")
                assert response.status_code == 200, (url, param["name"], response.json)


def test_answers_match_their_schemas(app, client, doc, stored):
    schemas = doc["components"]["schemas"]
    for _, route, url in query_routes(app):
        answer = client.get(url + "?window=1m").json
        items = answer["items"] if route.many else [answer]
        assert items, url
        schema = schemas[f"{route.kind.title()}Answer"]
        for item in items:
            assert set(schema["required"]) <= set(item) <= set(schema["properties"]), url
            assert list(item["metrics"]) == list(schema["properties"]["metrics"]["properties"])


def test_ingest_body_is_the_payload_schema(doc):
    body = doc["paths"]["/api/ingest"]["post"]["requestBody"]["content"]["application/json"]
    refs = {
        option.get("$ref") or option.get("items", {}).get("$ref")
        for option in body["schema"]["anyOf"]
    }
    assert refs == {"#/components/schemas/Payload"}
    assert "node_metrics" in doc["components"]["schemas"]["Payload"]["properties"]
