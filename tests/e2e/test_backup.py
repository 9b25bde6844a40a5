"""`cloudmon backup`: a consistent copy of the embedded store while the server takes writes,
which a server started on it answers from."""

import sqlite3
import subprocess
import sys
import threading
import time

from fixtures.servers import get_json, node_payload, post_ingest, running_server

PODS = 20


def backup(store, destination) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "cloudmon", "backup", str(destination)]
    command += ["--storage", f"sqlite:///{store}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_backup_taken_while_writes_go_on_is_whole_and_serves(tmp_path):
    live, restored = tmp_path / "live", tmp_path / "restored"
    live.mkdir()
    restored.mkdir()
    stop = threading.Event()
    stored = []

    with running_server(live) as url:

        def write() -> None:
            at = time.time() - 3600
            while not stop.is_set():
                for node in ("n1", "n2"):
                    body = node_payload(node, at, pods=PODS, namespace="shop")
                    status, _, _ = post_ingest(url, body)
                    assert status == 200
                    stored.append(at)
                at += 10

        writer = threading.Thread(target=write)
        writer.start()
        try:
            while len(stored) < 40:
                time.sleep(0.05)
            done = backup(live / "cloudmon.db", restored / "cloudmon.db")
            taken_while = len(stored)
            time.sleep(0.5)
        finally:
            stop.set()
            writer.join()
    assert done.returncode == 0, done.stderr
    assert "MiB in" in done.stdout
    assert len(stored) > taken_while  # the writes went on during and after the copy

    copy = sqlite3.connect(restored / "cloudmon.db")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # Each payload is in the copy whole or not at all: every node row has all its pods.
    rows = copy.execute(
        "SELECT n.bucket, count(p.id) FROM node_sample n LEFT JOIN pod_sample p"
        " ON p.bucket = n.bucket AND p.id IN (SELECT id FROM pod WHERE node ="
        " (SELECT name FROM node WHERE id = n.id)) GROUP BY n.bucket, n.id"
    ).fetchall()
    copy.close()
    assert rows and all(count == PODS for _, count in rows)

    with running_server(restored) as url:
        nodes = get_json(url + "/api/nodes?window=2h")["items"]
        assert [node["node"] for node in nodes] == ["n1", "n2"]
        shop = get_json(url + "/api/namespaces/shop?window=2h&metrics=pod_count")
        assert max(filter(None, shop["series"]["pod_count"])) == 2 * PODS


def test_a_backup_of_no_store_says_so(tmp_path):
    done = backup(tmp_path / "missing.db", tmp_path / "copy.db")
    assert done.returncode == 1
    assert "no store there" in done.stderr
    assert not (tmp_path / "copy.db").exists()
