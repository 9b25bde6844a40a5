"""The agent verifies an https:// server's certificate unless told --insecure."""

import ssl

import pytest
import trustme
from click.testing import CliRunner
from fixtures.cases import CASES
from fixtures.nodebuilder import build
from sender_support import IngestServer

from cloudmon.cli import main


@pytest.fixture
def ca():
    return trustme.CA()


@pytest.fixture
def https_server(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with IngestServer(tls=context) as running:
        yield running


@pytest.fixture
def node(tmp_path):
    return build(CASES["v2-kind"](), tmp_path / "node")


def _send_once(node, server_url, *flags):
    return CliRunner().invoke(
        main,
        ["agent", "--once", "--gap", "0", "--metadata", "none", "--server", server_url]
        + ["--proc-root", node.proc_root, "--cgroup-root", node.cgroup_root]
        + ["--rootfs", node.rootfs, *flags],
    )


def test_a_server_certificate_signed_by_the_given_ca_is_accepted(https_server, ca, node, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    result = _send_once(node, https_server.url, "--ca-file", str(ca_file))
    assert result.exit_code == 0
    assert len(https_server.accepted) == 1


def test_an_unknown_certificate_is_refused(https_server, node, caplog):
    result = _send_once(node, https_server.url)
    assert result.exit_code == 1
    assert https_server.accepted == []
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


def test_insecure_skips_verification_and_says_so(https_server, node, caplog):
    result = _send_once(node, https_server.url, "--insecure")
    assert result.exit_code == 0
    assert len(https_server.accepted) == 1
    assert "not verified" in caplog.text
