"""`cloudmon agent`: wires the collector, the metadata source and the sender together."""

import logging
import os
import signal
import ssl
import sys
import threading
import time

from cloudmon import payload
from cloudmon.agent import loop
from cloudmon.agent.cgroups import open_cgroups
from cloudmon.agent.cgroups.layout import NoCgroupHierarchy
from cloudmon.agent.collect import Collector
from cloudmon.agent.files import report_once
from cloudmon.agent.metadata import open_source
from cloudmon.agent.metadata.base import MetadataError
from cloudmon.agent.metadata.cache import MetadataCache
from cloudmon.agent.paths import Roots
from cloudmon.agent.sender import Sender
from cloudmon.agent.spool import DiskSpool, MemorySpool, default_bound

log = logging.getLogger("cloudmon.agent")


def run_agent(
    *,
    server,
    interval,
    node_name,
    proc_root,
    cgroup_root,
    rootfs,
    metadata,
    kubelet_url,
    crictl,
    token_file,
    ca_file,
    insecure,
    spool_dir,
    spool_limit,
    health_file,
    once,
    gap,
    output,
) -> int:
    """Run the agent until stopped (or twice with --once); the process's exit status."""
    if kubelet_url is None and os.environ.get("NODE_IP"):
        kubelet_url = f"https://{os.environ['NODE_IP']}:10250"
    try:
        cgroups = open_cgroups(cgroup_root)
        source = open_source(metadata, node_name=node_name, kubelet_url=kubelet_url, crictl=crictl)
    except (NoCgroupHierarchy, MetadataError) as error:
        log.error("cannot start: %s", error)
        return 2
    collector = Collector(
        Roots(proc=proc_root, cgroup=cgroup_root, rootfs=rootfs),
        node_name,
        cgroups,
        metadata=MetadataCache(source),
    )
    log.info(
        "monitoring node %s (cgroup v%d at %s, /proc at %s) %s",
        node_name,
        collector.cgroups.version,
        cgroup_root,
        proc_root,
        f"once, from two samples {gap:g} s apart" if once else f"every {interval:g} s",
    )
    spool = None
    if output == "-":
        deliver = _print_payload
    else:
        bound = spool_limit or default_bound(interval)
        spool = DiskSpool(spool_dir, bound) if spool_dir else MemorySpool(bound)
        deliver = Sender(
            server, spool=spool, token_file=token_file, ssl_context=_tls(ca_file, insecure)
        ).submit

    try:
        if once:
            collector.collect()
            time.sleep(gap)
            deliver(payload.encode(collector.collect()))
            if spool is not None and len(spool):
                log.error("the sample could not be delivered to %s", server)
                return 1
            return 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())

        def cycle() -> None:
            deliver(payload.encode(collector.collect()))
            if health_file:
                _touch(health_file)

        loop.run(cycle, interval, stop)
        log.info("stopped")
        return 0
    finally:
        source.close()
        if spool is not None:
            spool.close()


def _tls(ca_file: str | None, insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if insecure:
        log.warning("--insecure: the server's certificate is not verified")
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _touch(path: str) -> None:
    try:
        with open(path, "a"):
            os.utime(path)
    except OSError as error:
        report_once(path, "cannot touch the health file %s: %s", path, error, logger=log)


def seconds_since_last_cycle(health_file: str) -> float | None:
    """Seconds since the agent last touched its health file; None if it never did."""
    try:
        return time.time() - os.stat(health_file).st_mtime
    except OSError:
        return None


def _print_payload(encoded: bytes) -> None:
    sys.stdout.buffer.write(encoded + b"\n")
    sys.stdout.flush()
