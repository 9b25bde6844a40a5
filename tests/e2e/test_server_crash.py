"""kill -9 of the server under sustained ingest, again and again: on restart the store opens,
every payload that got a 2xx is there, no request is half stored, and ingest resumes."""

import random
import threading
import time

from fixtures.servers import ServerProcess, get_json, node_payload, post_ingest

WRITERS = 3
ROUNDS = 4
PODS = 2


def _payload(node: str, timestamp: float, value: int) -> bytes:
    return node_payload(node, timestamp, pods=PODS, namespace="crash", value=value)


def test_acknowledged_payloads_survive_kill_9(tmp_path):
    server = ServerProcess(tmp_path)
    start = (int(time.time()) // 10) * 10 - 3000  # within the raw retention, in the past
    next_index = dict.fromkeys(range(WRITERS), 0)
    acknowledged: dict[str, set[int]] = {f"crash-{w}": set() for w in range(WRITERS)}
    rng = random.Random(7)

    def write(writer: int, stop: threading.Event) -> None:
        node = f"crash-{writer}"
        while not stop.is_set() and next_index[writer] < 290:
            index = next_index[writer]
            if post_ingest(server.url, _payload(node, start + index * 10, index + 1))[0] == 200:
                acknowledged[node].add(index)
                next_index[writer] += 1
            else:
                time.sleep(0.01)

    for _ in range(ROUNDS):
        server.start()
        stop = threading.Event()
        threads = [threading.Thread(target=write, args=(w, stop)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.5, 1.5))
        server.kill()  # mid-ingest: requests are in flight
        stop.set()
        for thread in threads:
            thread.join()

    server.start()
    try:
        assert sum(map(len, acknowledged.values())) > ROUNDS * 5, "too little was ingested"
        span = f"start={start}&end={start + 2900}&step=10s"
        for node, indexes in acknowledged.items():
            series = get_json(f"{server.url}/api/nodes/{node}?{span}")["series"]
            by_bucket = dict(zip(series["timestamps"], series["memory_used_bytes"], strict=True))
            for index in indexes:
                assert by_bucket[start + index * 10] == index + 1, f"{node} lost #{index}"
        crash = get_json(f"{server.url}/api/namespaces/crash?{span}&metrics=pod_count")
        # A bucket holds all pods of each node that wrote it, never some of them.
        counts = {c for c in crash["series"]["pod_count"] if c is not None}
        assert counts <= {PODS * n for n in range(1, WRITERS + 1)}
        assert post_ingest(server.url, _payload("crash-after", start + 2950, 1))[0] == 200
    finally:
        server.stop()
