"""`cloudmon server`: the application under gunicorn, or Flask's own server with --dev."""

import ipaddress
import logging
import os
import shutil
import socket
import tempfile
import threading
import time

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import _DEFER, ThreadWorker

from cloudmon.server import maintenance, memory
from cloudmon.server.app import DEFAULT_STORAGE, create_app
from cloudmon.server.auth import read_token
from cloudmon.server.ingest import ARRIVED
from cloudmon.server.state import share_between_processes
from cloudmon.sizes import format_size
from cloudmon.storage import open_storage
from cloudmon.storage.base import RETENTION, backend

log = logging.getLogger(__name__)
UPKEEP_EVERY = 60.0  # seconds between rollups and deletions of expired samples
CHECKPOINT_EVERY = 1.0  # seconds between checkpoints of the store, outside the workers
REQUEST_TIME_LIMIT = 30.0  # seconds from a request's arrival to its answer before it is cut off


class _Worker(ThreadWorker):
    """gunicorn's threaded worker, which also gives the application each request's arrival
    (`ARRIVED` in its environ, for ingest to shed requests that waited too long), takes a
    thread for a connection only once it has sent something, and shuts the connection of a
    request not answered within `time_limit` seconds of its arrival, so that a client sending
    slowly, or not reading its answer, frees its thread."""

    time_limit = REQUEST_TIME_LIMIT

    def init_process(self) -> None:
        self._current = threading.local()
        self._deadlines: dict = {}
        self._deadlines_lock = threading.Lock()
        threading.Thread(target=self._cut_off_late, name="cloudmon-deadlines", daemon=True).start()
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app = self.wsgi

        def stamped(environ, start_response):
            environ[ARRIVED] = self._current.arrived
            return app(environ, start_response)

        self.wsgi = stamped

    def enqueue_req(self, conn) -> None:
        # Called when a connection is accepted or has its next request ready to read.
        conn.arrived = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn):
        # gunicorn's thread waits up to 5 s for a new connection's first request, and a worker
        # has one thread by default: a connection opened ahead of need (browsers open them
        # speculatively) would hold back every request queued behind it. One with nothing to
        # read yet waits in the worker's poller instead, closed after the keepalive time.
        if not conn.initialized and not conn.wait_for_data(0):
            return _DEFER
        self._current.arrived = conn.arrived
        with self._deadlines_lock:
            self._deadlines[conn] = conn.arrived + self.time_limit
        try:
            return super().handle(conn)
        finally:
            with self._deadlines_lock:
                self._deadlines.pop(conn, None)

    def _cut_off_late(self) -> None:
        while True:
            time.sleep(min(1.0, self.time_limit / 4))
            now = time.monotonic()
            with self._deadlines_lock:
                late = [conn for conn, deadline in self._deadlines.items() if deadline <= now]
                for conn in late:
                    del self._deadlines[conn]
            for conn in late:
                # The plain socket's shutdown, also under TLS: the thread blocked in a
                # read or a write of it gets an end of file or EPIPE and lets it go.
                try:
                    socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
                except OSError:
                    continue
                log.warning(
                    "cut off a request from %s not answered within %.0f s of its arrival",
                    conn.client[0] if isinstance(conn.client, tuple) else conn.client,
                    self.time_limit,
                )


class _Gunicorn(BaseApplication):
    def __init__(self, config: dict, options: dict) -> None:
        self._config = config
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return create_app(self._config)


def _open(config: dict):
    return open_storage(
        config["CLOUDMON_STORAGE"],
        retention=config.get("CLOUDMON_RETENTION", RETENTION),
        **config["CLOUDMON_STORAGE_OPTIONS"],
    )


def is_loopback(host: str) -> bool:
    """Whether a listening address is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_open(host: str, ingest_token: bool, read_token: bool) -> None:
    """Log one warning when the server listens beyond loopback without both tokens."""
    if is_loopback(host) or (ingest_token and read_token):
        return
    missing = [
        (flag, allowed)
        for flag, allowed, present in (
            ("--token-file", "store samples", ingest_token),
            ("--read-token-file", "read them", read_token),
        )
        if not present
    ]
    log.warning(
        "listening on %s, beyond loopback, without %s: anyone who reaches it can %s",
        host,
        " or ".join(flag for flag, _ in missing),
        " and ".join(allowed for _, allowed in missing),
    )


def run_server(
    host: str = "127.0.0.1",
    port: int = 8080,
    storage: str = DEFAULT_STORAGE,
    token_file: str | None = None,
    read_token_file: str | None = None,
    workers: int = 3,
    threads: int = 1,
    dev: bool = False,
    log_level: str = "info",
    retention: dict[int, float] | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    request_time_limit: float = REQUEST_TIME_LIMIT,
    upkeep_every: float = UPKEEP_EVERY,
    retention_size: int | None = None,
) -> int:
    """Serve until stopped; returns the exit status."""
    config = {
        "CLOUDMON_STORAGE": storage,
        "CLOUDMON_TOKEN": read_token(token_file),
        "CLOUDMON_READ_TOKEN": read_token(read_token_file),
        # Only the upkeep (the master's) deletes for size; every process opens the store alike.
        "CLOUDMON_STORAGE_OPTIONS": {"retention_size": retention_size} if retention_size else {},
    }
    if retention:
        config["CLOUDMON_RETENTION"] = {**RETENTION, **retention}
    if not memory.give_back_large_allocations():
        log.info("the C library is not glibc: its own thresholds decide what memory is given back")
    memory.collect_cycles_less_often()
    # Open once before forking: a bad URL fails here and the schema is migrated once.
    _open(config).close()
    log.info(
        "serving on %s://%s:%d with %s (ingest token: %s, read token: %s)",
        "https" if tls_cert else "http",
        host,
        port,
        storage,
        "yes" if token_file else "no",
        "yes" if read_token_file else "no",
    )
    warn_if_open(host, token_file is not None, read_token_file is not None)
    if retention_size:
        log.info("keeping the store within %s (--retention-size)", format_size(retention_size))
    if dev:
        create_app({**config, "CLOUDMON_UPKEEP_EVERY": upkeep_every}).run(
            host=host,
            port=port,
            threaded=True,
            ssl_context=(tls_cert, tls_key) if tls_cert else None,
        )
        return 0
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": type("CloudmonWorker", (_Worker,), {"time_limit": request_time_limit}),
        "loglevel": log_level,
        "errorlog": "-",
        "accesslog": None,
        "control_socket_disable": True,
        "timeout": 60,
        "graceful_timeout": 10,
        "proc_name": "cloudmon-server",
        "certfile": tls_cert,
        "keyfile": tls_key,
        # Upkeep and checkpoints for all workers, in the master process: the workers'
        # writes leave the WAL to it.
        "when_ready": lambda _: maintenance.start(_open(config), upkeep_every, CHECKPOINT_EVERY),
    }
    workers_config = dict(config)
    workers_config["CLOUDMON_STORAGE_OPTIONS"] = {
        **config["CLOUDMON_STORAGE_OPTIONS"],
        **backend(storage).worker_options(threads),
    }
    master = os.getpid()
    figures = tempfile.mkdtemp(prefix="cloudmon-metrics-")
    try:
        share_between_processes(figures)
        _Gunicorn(workers_config, options).run()
    finally:
        # Workers leave through here too (gunicorn ends them with SystemExit): only the
        # master removes the directory, or a worker's exit would take it from the others.
        if os.getpid() == master:
            shutil.rmtree(figures, ignore_errors=True)
    return 0
