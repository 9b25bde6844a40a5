"""Catch-up benchmark: ingest after an outage, over real HTTP to `cloudmon server` as it runs by
default (gunicorn, its default workers and threads) on a SQLite file, from --senders processes
on this machine. The cluster is the demo's (--nodes of --pods, --containers each); each node
sends what the agent's Sender sends (its batching, stamping and backoff, its spool oldest
first), one node after another in each process, one request a turn. Phases, each bounded in
time:

  live     each node's payload stamped as it is sent, one a request, as fast as they go;
  backlog  each node's --backlog-minutes of samples from before the live ones, spooled during
           an outage, sent in arrays of as many as fit the Sender's batch (4 MiB), while each
           node takes a live sample every 10 s behind them: the time to drain them all;
  singles  an older backlog of each node, one payload a request.

After the backlog and the singles the server is left alone for a while, and the CPU its
upkeep spends meanwhile (rolling up again the minutes their late samples changed) is printed
apart.

Each prints payloads/s, the server's CPU per payload (its master and workers, from /proc), the
HTTP statuses seen and the connections that failed. A node's samples all carry the figures of
one sample of the generator, each with its own timestamp: what the server does with a payload
does not depend on its figures, and generating 1,000 nodes' samples afresh would take the
cores the server needs. A quick run: --nodes 200 --pods 50.
"""

import argparse
import http.client
import inspect
import itertools
import logging
import math
import multiprocessing
import os
import signal
import tempfile
import time
from collections import Counter, deque

from isal import igzip
from server import add_cluster_options, connect, cpu_seconds, post_ingest, start_server

from cloudmon import payload
from cloudmon.agent.sender import Answer, Sender, parse_retry_after
from cloudmon.agent.spool import _take
from cloudmon.demo import INTERVAL, build_cluster
from cloudmon.server.main import run_server

_OPEN = 1_000_000_000.5  # the timestamp a template is encoded with, replaced when sent
_STAMP = len(b'{"sent_at":%.3f,' % time.time()) - 1  # what the Sender adds to each payload
# A node's turn: a flush with this deadline, past once its first request is answered (a
# payload takes longer) but not before it starts while the process waits for a core.
_TURN = 0.01
MAX_BATCH = Sender.__init__.__kwdefaults__["max_batch_bytes"]


class Template:
    """A node's payload with its timestamp left open."""

    def __init__(self, sample: dict) -> None:
        key = b'"timestamp":'
        self.head, self.tail = payload.encode({**sample, "timestamp": _OPEN}).split(
            key + b"%r" % _OPEN
        )
        self.head += key
        self.size = len(self.at(_OPEN))

    def at(self, t: float) -> bytes:
        return self.head + b"%.1f" % t + self.tail


class TimedSpool:
    """A node's spool (the agent's Spool) holding the times of its samples, each made from the
    node's template when the Sender takes it; counts the samples older than `live_from` that
    it gave up (sent, or refused on their own) apart from the others."""

    dropped = 0

    def __init__(self, template: Template) -> None:
        self.template = template
        self.times: deque[float] = deque()
        self.live_from = math.inf
        self.removed = Counter()

    def __len__(self) -> int:
        return len(self.times)

    def append(self, t: float) -> None:
        self.times.append(t)

    def oldest(self, n: int, max_bytes: int, added: int = 0) -> list[bytes]:
        sizes = itertools.repeat(self.template.size + added, len(self.times))
        taken = _take(sizes, n, max_bytes)  # the agent's own rule
        return [self.template.at(t) for t in itertools.islice(self.times, taken)]

    def remove_oldest(self, n: int) -> None:
        for _ in range(min(n, len(self.times))):
            self.removed["late" if self.times.popleft() < self.live_from else "live"] += 1


class CountingSender(Sender):
    """The agent's Sender, each POST compressed with ISA-L (zlib at level 6, the agent's,
    would take the cores the server needs) and its outcome counted: status or error."""

    def __init__(self, base: str, spool: TimedSpool, outcomes: Counter) -> None:
        super().__init__(base, spool=spool)
        self.outcomes = outcomes

    def _post(self, body: bytes, timeout: float) -> Answer:
        # The agent's own timeout for each socket operation, not the flush's time left.
        conn = connect(self.server_url, self.timeout)
        try:
            answer = post_ingest(conn, igzip.compress(body, 1))
        except (OSError, http.client.HTTPException) as error:
            self.outcomes[type(error).__name__] += 1
            return Answer(None, type(error).__name__)
        finally:
            conn.close()
        self.outcomes[answer.status] += 1
        retry_after = parse_retry_after(answer.getheader("Retry-After"), time.time())
        return Answer(answer.status, "", retry_after)


class Nodes:
    """One sender process's share of the cluster: a spool and a Sender each."""

    def __init__(self, base: str, cluster, share: range) -> None:
        self.outcomes = Counter()
        self.offsets = {}  # each node's place in the 10 s cycle
        self.spools, self.senders = [], []
        for i in share:
            node = cluster[i]
            node.sample(time.time() - INTERVAL)
            spool = TimedSpool(Template(node.sample(time.time())))
            self.spools.append(spool)
            self.senders.append(CountingSender(base, spool, self.outcomes))
            self.offsets[spool] = INTERVAL * i / len(cluster)

    def run(self, phase: str, seconds: float, backlog_from: float = 0.0, samples: int = 0):
        """One phase (see the module's doc), for `seconds` at most; a backlog of `samples`
        from `backlog_from` on."""
        deadline = time.monotonic() + seconds
        self.outcomes.clear()
        sent = sum(s.sent for s in self.senders)
        started = time.time()
        pairs = list(zip(self.spools, self.senders, strict=True))
        due = {}  # a node's next live sample behind its backlog
        for spool, sender in pairs:
            spool.times.clear()
            spool.removed.clear()
            spool.live_from = started
            sender.max_batch_bytes = 1 if phase == "singles" else MAX_BATCH
            first = backlog_from + self.offsets[spool]
            spool.times.extend(first + j * INTERVAL for j in range(samples))
            due[spool] = started + self.offsets[spool] if phase == "backlog" else math.inf
        drained = {}
        while time.monotonic() < deadline:
            attempts = self.outcomes.total()
            for spool, sender in pairs:
                now = time.time()
                if phase in ("register", "live"):
                    spool.append(now)
                while due[spool] <= now:
                    spool.append(due[spool])
                    due[spool] += INTERVAL
                if len(spool):
                    sender.flush(time.monotonic() + _TURN)
                if samples and not len(spool):
                    drained.setdefault(spool, time.time() - started)
                if time.monotonic() >= deadline:
                    break
            if phase == "register" or len(drained) == len(pairs):
                break
            if self.outcomes.total() == attempts:  # all drained or backing off
                time.sleep(0.05)
        removed = sum((s.removed for s in self.spools), Counter())
        return {
            "delivered": sum(s.sent for s in self.senders) - sent,
            "outcomes": Counter(self.outcomes),
            "late": removed["late"],
            "live": removed["live"],
            "left": sum(len(s) for s in self.spools),
            "drained": max(drained.values()) if len(drained) == len(pairs) else None,
            "seconds": time.time() - started,
        }


def sender_process(base: str, cluster, share: range, commands) -> None:
    logging.getLogger("cloudmon.agent.sender").setLevel(logging.ERROR)
    nodes = Nodes(base, cluster, share)
    commands.send(nodes.spools[0].template.size)
    while (command := commands.recv()) is not None:
        commands.send(nodes.run(*command))


def report(phase: str, results: list[dict], seconds: float, cpu: float) -> dict:
    """Print a phase's figures, from all sender processes; their sums."""
    total = {
        key: sum((r[key] for r in results), Counter() if key == "outcomes" else 0)
        for key in ("delivered", "outcomes", "late", "live", "left")
    }
    outcomes = total["outcomes"]
    statuses = ", ".join(
        f"{label} {count}"
        for label, count in (
            ("200", outcomes[200]),
            ("503", outcomes[503]),
            ("other", sum(n for k, n in outcomes.items() if isinstance(k, int)) - outcomes[200]
             - outcomes[503]),
        )
    )  # fmt: skip
    errors = ", ".join(f"{k} {n}" for k, n in outcomes.items() if isinstance(k, str)) or "none"
    delivered = total["delivered"]
    per_payload = f"{1000 * cpu / delivered:.1f} ms" if delivered else "-"
    print(
        f"{phase}: {delivered} payloads in {seconds:.0f} s: {delivered / seconds:.0f} payloads/s;"
        f" server CPU {per_payload} a payload; {outcomes.total()} requests: HTTP {statuses};"
        f" connection errors: {errors}"
    )
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_cluster_options(parser, nodes=1000, pods=110, containers=2)
    parser.add_argument("--senders", type=int, default=4, help="sender processes")
    parser.add_argument("--backlog-minutes", type=int, default=30)
    parser.add_argument("--live-seconds", type=float, default=60.0)
    parser.add_argument("--backlog-seconds", type=float, default=300.0, help="at most")
    parser.add_argument("--singles-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    samples = options.backlog_minutes * 60 // int(INTERVAL)
    defaults = inspect.signature(run_server).parameters
    started = time.monotonic()
    cluster = build_cluster(
        options.nodes, options.pods, options.seed, time.time(), containers=options.containers
    )
    fork = multiprocessing.get_context("fork")  # the processes share the cluster built here
    with tempfile.TemporaryDirectory() as tmp:
        process, base = start_server(f"sqlite:///{tmp}/catchup.db")
        links, senders = [], []
        try:
            for k in range(options.senders):
                link, theirs = fork.Pipe()
                share = range(k, options.nodes, options.senders)
                child = fork.Process(target=sender_process, args=(base, cluster, share, theirs))
                child.start()
                links.append(link)
                senders.append(child)
            size = max(link.recv() for link in links)
            batch = _take(itertools.repeat(size + _STAMP), samples, MAX_BATCH)
            print(
                f"catch-up: {options.nodes} nodes x {options.pods} pods x {options.containers}"
                f" containers, payloads of {size / 1e3:.0f} KB ({batch} to an array of"
                f" {MAX_BATCH / (1 << 20):g} MiB); {options.senders} sender processes and the"
                f" server ({defaults['workers'].default} workers of"
                f" {defaults['threads'].default} thread(s)) on {os.cpu_count()} cores;"
                f" ready in {time.monotonic() - started:.0f} s"
            )
            first = time.time()
            backlog = options.backlog_minutes * 60
            phases = (
                ("register", 120.0, 0.0, 0),
                ("live", options.live_seconds, 0.0, 0),
                ("backlog", options.backlog_seconds, first - backlog, samples),
                ("singles", options.singles_seconds, first - 2 * backlog, samples),
            )
            for phase in phases:
                results, seconds, cpu = run_phase(process.pid, links, phase)
                if phase[0] == "register":
                    print(f"register: each node's first payload sent in {seconds:.0f} s")
                    continue
                total = report(phase[0], results, seconds, cpu)
                if phase[0] == "live":
                    apart = options.nodes * seconds / max(1, total["delivered"])
                    print(f"live: a node's payloads {apart:.1f} s apart (buckets are 10 s)")
                if phase[0] == "backlog":
                    drain(results, total, samples * options.nodes, seconds, options.nodes)
                if phase[0] != "live":
                    settle(process.pid, phase[0], total["delivered"])
        finally:
            for link in links:
                link.send(None)
            for child in senders:
                child.join(timeout=30)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def run_phase(server: int, links, phase: tuple) -> tuple[list[dict], float, float]:
    """One phase in every sender process: their results, the seconds it took, the server's
    CPU seconds meanwhile."""
    cpu = cpu_seconds(server)
    started = time.monotonic()
    for link in links:
        link.send(phase)
    results = [link.recv() for link in links]
    return results, time.monotonic() - started, cpu_seconds(server) - cpu


def settle(server: int, phase: str, delivered: int) -> None:
    """Leave the server alone while the upkeep rolls up again what a phase's late samples
    made stale, and print what that cost (as much as 90 s hold): the phase's figure does not
    hold it, and the next phase's should not."""
    seconds = 90
    cpu = cpu_seconds(server)
    time.sleep(seconds)
    spent = cpu_seconds(server) - cpu
    each = f"{1000 * spent / delivered:.1f} ms a payload of it" if delivered else "-"
    print(f"{phase}, then {seconds} s without requests: server CPU {spent:.1f} s ({each})")


def drain(results: list[dict], total: dict, backlog: int, seconds: float, nodes: int) -> None:
    """Print how long the backlog took to drain, or how long it would at this rate."""
    late, live = total["late"], total["live"]
    print(f"backlog: {late} of {backlog} late payloads sent and {live} live ones behind them")
    if all(r["drained"] is not None for r in results):
        drained = max(r["drained"] for r in results)
        print(f"backlog: every node drained in {drained:.0f} s")
        return
    rate, arriving = (late + live) / seconds, nodes / INTERVAL
    if rate <= arriving:
        print(
            f"backlog: not drained in {seconds:.0f} s, and never at this rate"
            f" ({rate:.0f} payloads/s, fewer than the {arriving:.0f}/s that arrive live)"
        )
        return
    # What is left, plus the live samples taken meanwhile, at the rate above.
    more = total["left"] / (rate - arriving)
    print(
        f"backlog: not drained in {seconds:.0f} s ({total['left']} payloads left); at this rate,"
        f" with {arriving:.0f} live ones a second arriving, in about {seconds + more:.0f} s"
    )


if __name__ == "__main__":
    main()
