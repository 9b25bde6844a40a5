"""`cloudmon top` against the real server holding an ingested cluster: piped, in a real
terminal (a pty) of a given size, and through CliRunner."""

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.parse

import pytest
from click.testing import CliRunner
from dashboard.livecluster import ingest_cluster, node_payload, pod_sample, post
from fixtures.servers import get_json, running_server
from rich.console import Console

from cloudmon.top import cpu, memory, percent, run_top, shrink, skew, sparkline, throughput, top

COMMAND = [sys.executable, "-m", "cloudmon", "top"]
UNNAMED_UID = "f3a9c1d2-77b4-4e0c-9d1a-5b6c7d8e9f00"  # a pod the agent has no metadata for
ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[()][0-9A-B])")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A server holding 5 minutes of a cluster of 3 nodes of 6 pods."""
    with running_server(tmp_path_factory.mktemp("top")) as base:
        ingest_cluster(base, 3, 6, 300)
        yield base


@pytest.fixture
def server(cluster):
    """The cluster's server, its nodes' latest samples just sent, as its agents keep sending
    them: whatever the tests before took, each finds every node and pod reporting now (the
    API's lists without time parameters hold what reported in the last 30 s)."""
    now = time.time()
    # With the time the agent sent them: node-000's clock runs 63 s ahead of the server's,
    # node-001's 2.5 s behind, node-002's 0.3 s ahead.
    latest = [node_payload(node, now, 6) for node in range(3)]
    unnamed = pod_sample(2, 6, now) | {"uid": UNNAMED_UID, "node": "node-002"}
    unnamed.update(dict.fromkeys(("name", "namespace", "deployment", "workload"), None))
    latest[2]["pods"].append(unnamed)
    for body, ahead in zip(latest, (63.0, -2.5, 0.3), strict=True):
        post(cluster, [body | {"sent_at": time.time() + ahead}])
    return cluster


def run(server, *args):
    return CliRunner().invoke(top, [*args, "--server", server])


def piped(server, *args) -> str:
    """`cloudmon top` with its output to a pipe, as in `cloudmon top pods | head`."""
    done = subprocess.run(
        [*COMMAND, *args, "--server", server],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _env() -> dict:
    # COLUMNS and LINES would override the terminal's size.
    return {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {
        "TERM": "xterm-256color"
    }


def in_terminal(args: list[str], columns: int, rows: int = 50) -> tuple[int, int]:
    """Start `cloudmon top` on a new pty of `columns` x `rows`; its pid and the pty's fd."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: size its terminal, then become cloudmon
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
            # As a shell starts a program in the foreground, whatever ignored Ctrl-C before
            # (a shell's background job runs with SIGINT ignored, which exec keeps).
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execve(sys.executable, [*COMMAND, *args], _env())
        finally:
            os._exit(127)
    return pid, fd


def read_until(fd: int, done, seconds: float = 30) -> str:
    """What the terminal shows until `done(text)` holds or the program ends (ANSI removed)."""
    raw, deadline = b"", time.monotonic() + seconds
    while not done(ANSI.sub("", raw.decode(errors="replace"))):
        assert time.monotonic() < deadline, raw.decode(errors="replace")
        if select.select([fd], [], [], 0.5)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the program has ended
                break
            if not chunk:
                break
            raw += chunk
    return ANSI.sub("", raw.decode(errors="replace"))


def terminal_output(server, columns: int, *args) -> str:
    """The screen `cloudmon top ARGS` leaves in a terminal `columns` wide."""
    pid, fd = in_terminal([*args, "--server", server], columns)
    try:
        text = read_until(fd, lambda _: False)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text.replace("\r\n", "\n")


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()[1:] if line.strip()]


def test_one_unit_per_column_as_kubectl_top():
    assert [cpu(0.25), cpu(1.5), cpu(0.0004), cpu(None)] == ["250m", "1500m", "0m", "-"]
    assert [memory(128 * 2**20), memory(9810 * 2**20), memory(11.1 * 2**30), memory(None)] == [
        "128Mi",
        "9810Mi",
        "11366Mi",
        "-",
    ]
    assert throughput([960, 12_500, None]) == ["1.0KB/s", "12.5KB/s", "-"]
    assert throughput([950, 3.2e6]) == ["0.0MB/s", "3.2MB/s"]
    assert throughput([950, 12, None]) == ["950B/s", "12B/s", "-"]
    assert percent(12.4) == "12%"


def test_sparkline_spans_its_own_range_and_keeps_gaps():
    assert sparkline([10, 11, 12, None, 14]) == "▁▃▅ █"
    assert sparkline([1.50, 1.52, 1.49, 1.51]) == "▃█▁▆"  # busy, yet not a flat ████
    assert sparkline([5, 5, 5]) == "▁▁▁"  # flat looks flat
    assert sparkline([None, 0]) == " ▁"
    assert sparkline([]) == ""


def test_shrink_averages_neighbours():
    assert shrink([1, 3, 5, 7], 2) == [2, 6]
    assert shrink([1, None, None, None, 5, 7], 3) == [1, None, 6]
    assert shrink([1, 2], 5) == [1, 2]


def test_clock_skew_in_seconds():
    assert [skew(63.2), skew(-2.5), skew(0.31), skew(0.0), skew(None)] == [
        "+63s",
        "-2.5s",
        "+0.3s",
        "+0.0s",
        "-",
    ]


def test_nodes_table_matches_the_api(server):
    result = run(server, "nodes", "--window", "5m")
    assert result.exit_code == 0, result.output
    header, *_ = result.output.splitlines()
    assert header.split() == ["NODE", "CPU", "CPU%", "MEMORY", "MEMORY%", "CPU", "TREND"]
    api = {n["node"]: n["metrics"] for n in get_json(server + "/api/nodes")["items"]}
    shown = rows(result.output)
    assert len(shown) == 3
    assert [r[0] for r in shown] == sorted(api, key=lambda n: -api[n]["cpu_cores"])
    for name, cores, _, mem, _, trend in shown:
        assert cores == cpu(api[name]["cpu_cores"])
        assert mem == memory(api[name]["memory_used_bytes"])
        assert len(trend.strip()) >= 10 and set(trend) <= set("▁▂▃▄▅▆▇█ ")
        assert "▁" in trend and "█" in trend  # from the row's lowest to its highest


def test_pods_of_a_namespace_wide_sorted_by_memory(server):
    result = run(server, "pods", "-n", "shop", "--sort", "memory", "-o", "wide")
    assert result.exit_code == 0, result.output
    assert result.output.split()[:4] == ["NAMESPACE", "NAME", "NODE", "DEPLOYMENT"]
    pods = get_json(server + "/api/pods?namespace=shop")["items"]
    by_name = {p["name"]: p for p in pods}
    shown = rows(result.output)
    assert {r[0] for r in shown} == {"shop"}
    assert sorted(r[1] for r in shown) == sorted(by_name)
    working_sets = [by_name[r[1]]["metrics"]["memory_working_set_bytes"] for r in shown]
    assert working_sets == sorted(working_sets, reverse=True)
    assert [r[2] for r in shown] == [by_name[r[1]]["node"] for r in shown]


def test_wide_pods_show_throttling_stalls_oom_kills_and_restarts(server):
    result = run(server, "pods", "-A", "--sort", "name", "-o", "wide")
    assert result.exit_code == 0, result.output
    header = result.output.split("\n")[0].split()
    at = header.index("THROTTLED")
    assert header[at : at + 5] == ["THROTTLED", "CPU-STALL", "MEM-STALL", "OOM", "RESTARTS"]
    by_name = {p["name"]: p["metrics"] for p in get_json(server + "/api/pods")["items"]}
    shown = [row for row in rows(result.output) if row[1] in by_name]
    assert shown
    for row in shown:
        metrics = by_name[row[1]]
        assert row[at : at + 5] == [
            percent(metrics["cpu_throttled_percent"]),
            f"{round(100 * metrics['cpu_pressure_some_ratio'])}%",
            f"{round(100 * metrics['memory_pressure_some_ratio'])}%",
            str(metrics["memory_oom_kills_total"]),
            str(metrics["restarts_total"]),
        ]
    assert {"40%", "25%", "5%", "2", "3"} <= {cell for row in shown for cell in row[at : at + 5]}


def test_json_output_is_the_api_items(server):
    result = run(server, "deployments", "-A", "-o", "json", "--sort", "name")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)["items"]
    keys = [(d["namespace"], d["name"]) for d in items]
    assert keys == sorted(keys)
    query = urllib.parse.urlencode({"metrics": "pod_count,cpu_cores"})
    api = {
        (d["namespace"], d["name"]): d
        for d in get_json(f"{server}/api/deployments?{query}")["items"]
    }
    assert set(keys) == set(api)
    for d in items:
        assert d["metrics"]["pod_count"] == api[(d["namespace"], d["name"])]["metrics"]["pod_count"]


def test_one_namespace_and_an_unknown_one(server):
    result = run(server, "namespaces", "-n", "shop")
    assert result.exit_code == 0, result.output
    assert [r[0] for r in rows(result.output)] == ["shop"]
    result = run(server, "namespaces", "-n", "nowhere")
    assert result.exit_code == 0
    assert "No namespaces reported in the last 1h." in result.output


def test_piped_output_has_every_figure_whole(server):
    """`cloudmon top pods -o wide | head` in an 80-column terminal: figures are not cut."""
    output = piped(server, "pods", "-o", "wide", "--window", "5m")
    assert "…" not in output
    header, *lines = output.splitlines()
    names = ["NAMESPACE", "NAME", "NODE", "DEPLOYMENT"]
    figures = ["CPU", "CPU-REQ", "MEMORY", "MEM-REQ", "NET-IN", "NET-OUT"]
    figures += ["THROTTLED", "CPU-STALL", "MEM-STALL", "OOM", "RESTARTS"]
    assert header.split() == [*names, *figures, "CPU", "TREND"]
    api = {p["uid"]: p for p in get_json(server + "/api/pods")["items"]}
    assert len(lines) == len(api) == 19
    shown = {line.split()[1]: line.split() for line in lines}
    for pod in api.values():
        row = shown[pod["name"] or pod["uid"][:8]]
        assert row[4] == cpu(pod["metrics"]["cpu_cores"])
        assert row[6] == memory(pod["metrics"]["memory_working_set_bytes"])
        assert re.fullmatch(r"[0-9.]+KB/s", row[8]), row
        if pod["name"]:  # the pod without metadata has only the samples the tests sent
            # the sparkline: there is no width to fit when piped
            assert len(row[len(names) + len(figures)]) >= 10


def _figures(kind: str, wide: bool, metrics: dict) -> str:
    """A pattern of the figures `top` shows for one item, up to its network columns (whose
    unit depends on the column)."""
    if kind == "nodes":
        shown = [cpu(metrics["cpu_cores"]), percent(metrics["cpu_percent"])]
        shown += [memory(metrics["memory_used_bytes"]), percent(metrics["memory_percent"])]
        shown += [str(metrics["pod_count"])] if wide else []
    else:
        shown = [cpu(metrics["cpu_cores"])] + ([cpu(metrics["cpu_request_cores"])] if wide else [])
        shown += [memory(metrics["memory_working_set_bytes"])]
        shown += [memory(metrics["memory_request_bytes"])] if wide else []
    rate = r"\s+[0-9.]+[KMG]?B/s"
    return r"\s" + r"\s+".join(map(re.escape, shown)) + (2 * rate if wide else "")


@pytest.mark.parametrize(
    ("kind", "output", "columns"),
    [("pods", "wide", 80), ("nodes", "wide", 80), ("pods", "table", 50)],
)
def test_a_narrow_terminal_keeps_the_figures_and_gives_up_the_sparkline(
    server, kind, output, columns
):
    text = terminal_output(server, columns, kind, "-o", output, "--window", "5m")
    assert "TREND" not in text.splitlines()[0]
    assert "…" not in text  # a table still too wide is left whole, for the terminal to wrap
    items = get_json(f"{server}/api/{kind}")["items"]
    assert len(items) == {"pods": 19, "nodes": 3}[kind]  # the unnamed pod too
    for item in items:
        assert re.search(_figures(kind, output == "wide", item["metrics"]), text), text


def test_a_terminal_with_room_shows_names_figures_and_sparkline_whole(server):
    text = terminal_output(server, 80, "pods", "--window", "5m")
    header, *lines = text.strip("\n").splitlines()
    assert header.split() == ["NAMESPACE", "NAME", "CPU", "MEMORY", "CPU", "TREND"]
    assert "…" not in text
    assert all(len(line) <= 80 for line in lines)
    for line in lines:
        if UNNAMED_UID[:8] not in line:  # it has only the samples the tests sent
            assert len(line.split()[-1]) >= 10, line


def test_pods_without_metadata_show_their_uid(server):
    output = piped(server, "pods", "--sort", "name")
    assert re.search(r"^-\s+" + UNNAMED_UID[:8] + r"\s+\d+m\s+\d+Mi", output, re.M), output


def test_wide_nodes_show_clock_skew_and_warn_of_clocks_that_are_off(server):
    output = piped(server, "nodes", "-o", "wide", "--sort", "name")
    header, *lines = output.splitlines()
    assert "SKEW" in header.split()
    column = header.split().index("SKEW")
    rows = {line.split()[0]: line.split()[column] for line in lines[:3]}
    assert rows == {"node-000": "+63s!", "node-001": "-2.5s!", "node-002": "+0.3s"}
    assert re.search(r"node-000 \(\+63s\).*node-001 \(-2\.5s\)", lines[-1]), output
    assert "clock" in lines[-1] and "node-002" not in lines[-1]


def test_watch_redraws_every_interval(server):
    console = Console(record=True, width=200, force_terminal=False)
    slept = []
    run_top("nodes", server, None, "cpu", "15m", "table", None, 10.0, console, 3, slept.append)
    assert slept == [10.0, 10.0]
    assert console.export_text().count("node-000") == 3  # every frame, not on a terminal


def test_watch_prints_every_frame_as_it_comes_when_piped(server, tmp_path):
    """`timeout 7 cloudmon top nodes --watch --interval 2 > f` leaves frames in f."""
    with open(tmp_path / "f", "w") as out:
        process = subprocess.Popen(
            [*COMMAND, "nodes", "--watch", "--interval", "1", "--server", server], stdout=out
        )
    try:
        deadline = time.monotonic() + 30
        while (tmp_path / "f").read_text().count("NODE") < 2:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert (tmp_path / "f").read_text().count("node-000") >= 2


def test_ctrl_c_ends_watch_quietly(server):
    pid, fd = in_terminal(["nodes", "--watch", "--interval", "1", "--server", server], 120)
    try:
        read_until(fd, lambda text: "node-002" in text)
        os.write(fd, b"\x03")
        rest = read_until(fd, lambda _: False)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    # 130 (128 + SIGINT), as a shell reports a program Ctrl-C ended: a script can tell.
    assert os.waitstatus_to_exitcode(status) == 130, rest
    assert "Aborted" not in rest and "Traceback" not in rest, rest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pods", "-n", "shop", "-A"], "either -n/--namespace or -A"),
        (["nodes", "-n", "shop"], "nodes have no namespace"),
        (["pods", "--window", "soon"], "is not a duration"),
        (["pods", "--sort", "pods"], "pods cannot be sorted by pods"),
    ],
)
def test_usage_errors(server, args, message):
    result = run(server, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_unreachable_server():
    result = CliRunner().invoke(top, ["nodes", "--server", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert re.search(r"cannot reach the cloudmon server at http://127.0.0.1:9", result.output)


def test_running_top_loads_no_server_code(tmp_path):
    token = tmp_path / "token"
    token.write_text("secret\n")
    code = (
        "import sys\n"
        "from cloudmon.top import top\n"
        "try:\n"
        f"    top.main(['nodes', '--server', 'http://127.0.0.1:9', '--window', '5m',"
        f" '--token-file', '{token}'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print([m for m in sys.modules if m.startswith(('flask', 'cloudmon.server'))])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
