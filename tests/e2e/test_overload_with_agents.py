"""At twice what the server could store with every core of the machine to itself, ingest
sheds load with 503 and Retry-After and still spends its CPU on storing; agents (the agent's
Sender, in their own processes) wait as told, catch up afterwards and lose nothing within
their spool's bound; past it they drop the oldest and count them.

The capacity is measured in the server's CPU seconds per payload, which another load on the
machine changes little, rather than in payloads per second, which it does."""

import asyncio
import gzip
import importlib.util
import itertools
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
from fixtures.servers import ServerProcess, get_json

from cloudmon.agent.sender import Sender
from cloudmon.agent.spool import MemorySpool

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "server.py"
_spec = importlib.util.spec_from_file_location("bench_server", _BENCH)
bench = sys.modules["bench_server"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

OVERLOAD = float(os.environ.get("CLOUDMON_OVERLOAD_SECONDS", "12"))
MEASURE = 4.0  # seconds of closed-loop ingest that measure the capacity
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOADERS = 3  # processes offering the load
AGENTS = 4
AGENT_INTERVAL = 0.25  # seconds between an agent's samples, to compress time
BUCKET = 10
SMALL_SPOOL = 5
BUSY = 3.0  # seconds a process may be kept waiting on a machine busy with other work


def _workers_cpu(pid: int) -> float:
    """CPU seconds the server's workers (the gunicorn master's children) have used."""
    ticks = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (proc(5))
    return ticks / CLK_TCK


def _capacity(server: ServerProcess) -> tuple[float, float]:
    """Payloads per second the server stores from closed-loop clients sending what the loaders
    send, and its workers' CPU seconds per payload meanwhile."""
    with multiprocessing.Pool(3) as pool:
        cpu = _workers_cpu(server.process.pid)
        stored = sum(pool.map(_closed_loop, [(server.url, client) for client in range(3)]))
        cpu = _workers_cpu(server.process.pid) - cpu
    return stored / MEASURE, cpu / stored


async def _post(host: str, port: int, body: bytes) -> tuple[int, str | None, float]:
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST /api/ingest HTTP/1.1\r\nHost: cloudmon\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
    except (TimeoutError, OSError, asyncio.IncompleteReadError):
        return 0, None, time.monotonic() - started
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers.get("Retry-After"), time.monotonic() - started


def _bodies(first: int, base: int) -> Iterator[bytes]:
    """Payloads of 20 nodes of 110 pods from node `first` on, gzip-compressed, the nodes in
    turn, each round a bucket later from `base`."""
    templates = [orjson.dumps(bench.node_body(first + i, 0.0, 110, 20)) for i in range(20)]
    for bucket in itertools.count(base, BUCKET):
        for template in templates:
            yield gzip.compress(template.replace(b'"timestamp":0.0', b'"timestamp":%d' % bucket), 1)


def _closed_loop(args) -> int:
    """POSTs as the loaders make them (of nodes of its own), each once the previous one is
    answered, for MEASURE s: how many were stored."""
    url, client = args
    host, port = url.removeprefix("http://").rsplit(":", 1)
    bodies = _bodies(30_000 + client * 100, int(time.time()) // BUCKET * BUCKET - 6000)

    async def run() -> int:
        stored, started = 0, time.monotonic()
        while time.monotonic() - started < MEASURE:
            status, _, _ = await _post(host, int(port), next(bodies))
            if status != 200:
                raise RuntimeError(f"ingest answered {status} to closed-loop clients")
            stored += 1
        return stored

    return asyncio.run(run())


def _offer(url: str, loader: int, rate: float, seconds: float, ready, answers) -> None:
    """POSTs at `rate` per second for `seconds` once all loaders are `ready`, each on its own
    connection, whatever the answers: an open loop. Puts the list of answers, each (status,
    Retry-After, seconds) with status 0 for none, on `answers`."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    count = int(rate * seconds)
    base = int(time.time()) // BUCKET * BUCKET - 3000
    bodies = list(itertools.islice(_bodies(20_000 + loader * 100, base), count))

    async def run():
        started = time.monotonic()
        tasks = []
        for number in range(count):
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            tasks.append(asyncio.create_task(_post(host, int(port), bodies[number])))
        return await asyncio.gather(*tasks)

    ready.wait()
    answers.put(asyncio.run(run()))


def _agent_payload(node: str, timestamp: float) -> bytes:
    pods = [
        {"uid": f"{node}-{i}", "name": f"{node}-{i}", "namespace": "agents", "containers": []}
        | {"memory_working_set_bytes": 1000 + i}
        for i in range(5)
    ]
    return orjson.dumps(
        {
            "schema": 1,
            "node": node,
            "timestamp": timestamp,
            "interval": 10.0,
            "node_info": {"cpu_count": 2},
            "node_metrics": {"memory_used_bytes": 1},
            "pods": pods,
        }
    )


class _TimedSender(Sender):
    """The agent's Sender, noting of each POST when it began and ended (on the Sender's
    clock) and the status and Retry-After it was answered with."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.posts: list[tuple[float, float, int | None, float | None]] = []

    def _post(self, body: bytes, timeout: float):
        began = time.monotonic()
        answer = super()._post(body, timeout)
        self.posts.append((began, time.monotonic(), answer.status, answer.retry_after))
        return answer


def _agent(args) -> dict:
    """An agent sampling every AGENT_INTERVAL s until `until` (wall clock), each sample in a
    bucket of its own, then sending what it spooled; what it made, dropped and met."""
    url, node, base, bound, until = args
    sender = _TimedSender(url, spool=MemorySpool(bound), timeout=10.0)
    made = 0
    while time.time() < until:
        sender.submit(_agent_payload(node, base + BUCKET * made))
        made += 1
        time.sleep(AGENT_INTERVAL)
    while len(sender.spool) and time.time() < until + 60:
        sender.flush()
        time.sleep(0.1)
    return {
        "node": node,
        "made": made,
        "dropped": sender.spool.dropped,
        "left": len(sender.spool),
        "posts": sender.posts,
        "emptied": time.time(),
    }


def _stored(url: str, node: str, base: int, made: int) -> list[int]:
    """The buckets of `node` holding a sample, of the `made` it sent from `base`."""
    span = f"start={base}&end={base + BUCKET * (made + 1)}&step={BUCKET}s&metrics=memory_used_bytes"
    series = get_json(f"{url}/api/nodes/{node}?{span}")["series"]
    return [
        int(t)
        for t, v in zip(series["timestamps"], series["memory_used_bytes"], strict=True)
        if v is not None
    ]


def test_at_twice_the_capacity_ingest_sheds_and_agents_catch_up(tmp_path):
    server = ServerProcess(tmp_path, "--threads", "4", workers=3).start()
    try:
        capacity, cpu_per_payload = _capacity(server)
        # Twice what the workers could store with every core to themselves: more than they
        # can, however busy the machine is.
        rate = 2 * len(os.sched_getaffinity(0)) / cpu_per_payload
        base = int(time.time()) // BUCKET * BUCKET - 3000
        agent_jobs = [
            (server.url, f"agent-{n}", base, SMALL_SPOOL if n == 0 else 1000, None)
            for n in range(AGENTS)
        ]
        ready, parts = multiprocessing.Barrier(LOADERS + 1), multiprocessing.Queue()
        loaders = [
            multiprocessing.Process(
                target=_offer, args=(server.url, n, rate / LOADERS, OVERLOAD, ready, parts)
            )
            for n in range(LOADERS)
        ]
        for loader in loaders:
            loader.start()
        with multiprocessing.Pool(AGENTS) as pool:
            ready.wait(timeout=120)  # the loaders' bodies are made
            began, cpu = time.time(), _workers_cpu(server.process.pid)
            agents = pool.map_async(
                _agent, [(*job[:4], began + OVERLOAD + 2) for job in agent_jobs]
            )
            answers = [answer for _ in loaders for answer in parts.get(timeout=120)]
            ended, cpu = time.time(), _workers_cpu(server.process.pid) - cpu
            outcomes = agents.get(timeout=120)
        for loader in loaders:
            loader.join()
        statuses = [status for status, _, _ in answers]
        shed = [answer for answer in answers if answer[0] == 503]
        served = [seconds for status, _, seconds in answers if status == 200]
        offered = len(answers) / (ended - began)
        # Of the workers' CPU under overload, the share that went into storing payloads at
        # the cost each took without overload; the rest went into shedding.
        storing = len(served) * cpu_per_payload / cpu
        caught_up = max(outcome["emptied"] for outcome in outcomes) - ended
        # Each POST an agent made after a refusal with Retry-After: how much longer than it
        # was told it waited, from the refusal's end to its own beginning.
        waits = [
            then[0] - refused[1] - refused[3]
            for outcome in outcomes
            for refused, then in itertools.pairwise(outcome["posts"])
            if refused[3] is not None
        ]
        print(
            f"\noverload: capacity {capacity:.0f} payloads/s of 110 pods (shared machine: noisy),"
            f" {1000 * cpu_per_payload:.1f} ms of the workers' CPU each;"
            f" offered {len(answers)} in {ended - began:.1f} s ({offered:.0f}/s);"
            f" 200: {len(served)} ({len(served) / (ended - began):.0f}/s),"
            f" 503: {len(shed)}, no answer: {statuses.count(0)};"
            f" storing took {100 * storing:.0f} % of the workers' {cpu:.1f} s of CPU;"
            f" p99 of the stored: {1000 * statistics.quantiles(served, n=100)[98]:.0f} ms;"
            f" agents refused {len(waits)} times, waited {min(waits, default=0):.2f} s or more"
            f" beyond Retry-After; caught up {caught_up:.1f} s after the overload"
        )
        assert set(statuses) <= {200, 503}, sorted(set(statuses))
        assert shed, "nothing was shed at twice the capacity"
        assert all(retry is not None and int(retry) > 0 for _, retry, _ in shed)
        assert storing > 1 / 3, "shedding starved the stored payloads"

        # Every agent met the overload, waited as told rather than hammering, and caught up.
        assert waits, "no agent was refused"
        assert min(waits) >= 0, "an agent retried before the Retry-After it was given"
        # Nor much after it: the Sender adds up to a tenth of it as jitter, the agent tries
        # again at its next sample, and a busy machine may be late by BUSY.
        longest = max(retry for outcome in outcomes for *_, retry in outcome["posts"] if retry)
        assert max(waits) < 0.1 * longest + AGENT_INTERVAL + BUSY, max(waits)
        # The backlog is sent as soon as the last Retry-After ends: a few small batches.
        assert caught_up < 1.1 * longest + AGENT_INTERVAL + BUSY
        for outcome in outcomes:
            stored = _stored(server.url, outcome["node"], base, outcome["made"])
            print(
                f"{outcome['node']}: made {outcome['made']}, stored {len(stored)},"
                f" dropped {outcome['dropped']}"
            )
            assert outcome["left"] == 0
            # Past the bound (agent-0's spool of 5), what was not stored was counted.
            assert len(stored) + outcome["dropped"] == outcome["made"]
            if outcome["node"] != "agent-0":
                assert outcome["dropped"] == 0
                assert stored == [base + BUCKET * n for n in range(outcome["made"])]
    finally:
        server.stop()
