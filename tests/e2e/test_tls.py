"""`cloudmon server --tls-cert --tls-key` serves HTTPS that an agent with --ca-file trusts."""

import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import trustme
from fixtures.cases import CASES
from fixtures.nodebuilder import build
from fixtures.servers import ServerProcess, get_json


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    ca = trustme.CA()
    ca_file, cert_file, key_file = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    issued = ca.issue_cert("127.0.0.1")
    issued.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    # urllib's default context, used by the fixture's readiness check, trusts this CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    server = ServerProcess(
        tmp_path, "--tls-cert", str(cert_file), "--tls-key", str(key_file), workers=1
    )
    server.url = server.url.replace("http://", "https://")
    server.start()
    try:
        yield server, ca_file
    finally:
        server.stop()


def test_the_server_answers_over_https_only(tls_server):
    server, _ = tls_server
    assert get_json(server.url + "/healthz") == {"status": "ok"}
    with pytest.raises(OSError):  # the connection closed, no HTTP answer
        urllib.request.urlopen(server.url.replace("https://", "http://") + "/healthz", timeout=10)
    untrusting = ssl.create_default_context(cadata=trustme.CA().cert_pem.bytes().decode())
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(server.url + "/healthz", timeout=10, context=untrusting)


def test_an_agent_with_the_ca_file_gets_its_payload_stored(tls_server, tmp_path):
    server, ca_file = tls_server
    node = build(CASES["v2-kind"](), tmp_path / "node")
    agent = subprocess.run(
        [sys.executable, "-m", "cloudmon", "agent", "--once", "--gap", "0", "--metadata", "none"]
        + ["--server", server.url, "--ca-file", str(ca_file), "--node-name", "tls-node"]
        + ["--proc-root", node.proc_root, "--cgroup-root", node.cgroup_root]
        + ["--rootfs", node.rootfs],
        capture_output=True,
        text=True,
        timeout=60,
        env={name: value for name, value in os.environ.items() if name != "SSL_CERT_FILE"},
    )
    assert agent.returncode == 0, agent.stderr
    items = get_json(server.url + "/api/nodes")["items"]
    assert [item["node"] for item in items] == ["tls-node"]
