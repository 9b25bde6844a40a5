import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloudmon import payload
from cloudmon.cli import main
from cloudmon.metrics import Scope, markdown_table, metrics_for

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_metric_table_is_the_catalogue():
    table = README.split("<!-- metrics:begin -->\n")[1].split("<!-- metrics:end -->")[0]
    assert table == markdown_table(), "regenerate it: python -m cloudmon.metrics"


def test_readme_shows_the_two_commands_first():
    first_block = README.split("```")[1]
    assert "make run" in first_block and "make test" in first_block


@pytest.mark.parametrize("command", sorted(main.commands))
def test_readme_documents_every_flag(command):
    help_text = CliRunner().invoke(main, [command, "--help"]).output
    flags = set(re.findall(r"(--[a-z][a-z0-9-]+)", help_text)) - {"--help"}
    missing = [flag for flag in sorted(flags) if f"`{flag}" not in README]
    assert not missing


def test_readme_example_payload_is_whole_and_complete():
    example = README.split("<!-- payload:begin -->\n```json\n")[1].split("```")[0]
    payloads, ignored = payload.decode_reporting(example.encode())
    assert ignored == []
    [sample] = payloads
    document = json.loads(example)
    assert set(document) == set(payload.Payload.__struct_fields__)
    assert set(document["node_metrics"]) == set(sent(Scope.NODE))
    [pod] = document["pods"]
    assert set(pod) - {"containers"} == set(payload.Pod.__struct_fields__) - {"containers"}
    [container] = pod["containers"]
    assert set(container) == set(payload.Container.__struct_fields__)
    assert sample.node_metrics.cpu_cores == 0.84


def sent(scope):
    return [m.name for m in metrics_for(scope) if not m.by_server]
