"""A store's engine refusing a request is answered 502 with its answer, not a 500."""

from fixtures.prometheus import running_prometheus, store_url
from server_payloads import T0, Clock, payload, pod

from cloudmon.server.app import create_app
from cloudmon.storage import open_storage


def test_a_write_the_engine_refuses_is_a_502(tmp_path):
    # A Prometheus of its own: samples of now that other tests wrote would make these old ones
    # out of order, and Prometheus accepts an out-of-order duplicate.
    with running_prometheus(tmp_path) as prometheus:
        clock = Clock(T0 + 25)
        store = open_storage(store_url(prometheus), clock=clock)
        client = create_app({"CLOUDMON_STORAGE": store, "CLOUDMON_NOW": clock}).test_client()
        try:
            sample = payload("n1", T0 + 1, [pod("u", "p", "ns", cpu_cores=1.0)])
            assert client.post("/api/ingest", json=sample).status_code == 200
            # The same instant with another value: Prometheus refuses a duplicate sample.
            again = client.post(
                "/api/ingest", json=payload("n1", T0 + 1, [pod("u", "p", "ns", cpu_cores=2.0)])
            )
        finally:
            store.close()
    assert again.status_code == 502, again.json
    assert again.json["error"].startswith("storage: the store's engine answered HTTP 400")
