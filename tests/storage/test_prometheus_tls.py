"""The Prometheus store over HTTPS: the engine's certificate checked against --storage's
ca_file, and refused when another CA signed it."""

import pytest
import trustme
from fixtures.prometheus import PrometheusProcess
from store_payloads import T0, Clock, node_payload, payloads

from cloudmon.storage import open_storage
from cloudmon.storage.model import EntityKind


@pytest.fixture(scope="module")
def https_prometheus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("prometheus-tls")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certificate.private_key_pem.write_to_path(str(directory / "key.pem"))
    certificate.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    authority.cert_pem.write_to_path(str(directory / "ca.pem"))
    web = (
        f"tls_server_config:\n  cert_file: {directory}/cert.pem\n  key_file: {directory}/key.pem\n"
    )
    server = PrometheusProcess(directory, web_config=web, ca_file=directory / "ca.pem").start()
    yield server, directory / "ca.pem"
    server.stop()


def test_written_and_read_over_https_with_the_engines_ca(https_prometheus):
    server, ca = https_prometheus
    assert server.url.startswith("https://")
    url = f"prometheus+https://127.0.0.1:{server.port}?ca_file={ca}&cluster=tls"
    store = open_storage(url, clock=Clock(T0 + 25))
    try:
        store.write(payloads(node_payload("n1", T0, [("a", "ns", 0.5)])))
        (pod,) = store.entities(EntityKind.POD)
        assert store.latest([pod], ("cpu_cores",))[0]["metrics"] == {"cpu_cores": 0.5}
    finally:
        store.close()


def test_a_certificate_of_another_ca_is_refused(https_prometheus, tmp_path):
    server, _ = https_prometheus
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    url = f"prometheus+https://127.0.0.1:{server.port}?ca_file={other}&cluster=tls-other"
    store = open_storage(url, clock=Clock(T0 + 25))
    try:
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            store.write(payloads(node_payload("n1", T0, [("a", "ns", 0.5)])))
    finally:
        store.close()
