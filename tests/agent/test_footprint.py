"""The agent stays light: it never loads the server's code or libraries, nor `top`'s rich."""

import json
import subprocess
import sys

from fixtures.cases import CASES
from fixtures.nodebuilder import build

NOT_FOR_THE_AGENT = ("flask", "werkzeug", "gunicorn", "sqlite3", "prometheus_client", "rich")
NOT_FOR_THE_AGENT += ("cloudmon.server", "cloudmon.storage")

PROBE = """
import json, sys
from cloudmon.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    prefixes = tuple(json.loads(sys.stdin.read()))
    loaded = sorted(m for m in sys.modules if m.startswith(prefixes))
    print(json.dumps(loaded), file=sys.stderr)
"""


def test_agent_does_not_import_server_code(tmp_path):
    node = build(CASES["v2-systemd-containerd"](), tmp_path / "node")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "agent", "--once", "--gap", "0", "--output", "-"]
        + ["--metadata", "none", "--proc-root", node.proc_root]
        + ["--cgroup-root", node.cgroup_root, "--rootfs", node.rootfs],
        input=json.dumps(NOT_FOR_THE_AGENT),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout)["node_metrics"]["pod_count"] > 0
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
