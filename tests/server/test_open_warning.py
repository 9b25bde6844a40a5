"""The server warns at start when it listens beyond loopback without both tokens."""

import logging

import pytest
from fixtures.servers import ServerProcess

from cloudmon.server.main import is_loopback, warn_if_open


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("ingest", "read", "expected"),
    [
        (False, False, "without --token-file or --read-token-file"),
        (True, False, "without --read-token-file: anyone who reaches it can read them"),
        (False, True, "without --token-file: anyone who reaches it can store samples"),
    ],
)
def test_one_warning_beyond_loopback_without_a_token(caplog, ingest, read, expected):
    with caplog.at_level(logging.INFO):
        warn_if_open("0.0.0.0", ingest, read)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert expected in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("host", "ingest", "read"), [("0.0.0.0", True, True), ("127.0.0.1", False, False)]
)
def test_no_warning_with_both_tokens_or_on_loopback(caplog, host, ingest, read):
    with caplog.at_level(logging.INFO):
        warn_if_open(host, ingest, read)
    assert caplog.records == []


def test_the_real_server_warns_once_on_all_interfaces(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    server = ServerProcess(tmp_path, "--host", "0.0.0.0", "--token-file", str(token), workers=1)
    server.start()
    server.stop()
    lines = server.log_path.read_text().splitlines()
    warnings = [line for line in lines if "beyond loopback" in line]
    assert len(warnings) == 1
    assert "without --read-token-file" in warnings[0]
    assert "s3cret" not in server.log_path.read_text()
