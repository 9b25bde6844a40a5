"""`cloudmon server`: the application under gunicorn, or Flask's own server with --dev."""

import logging

from gunicorn.app.base import BaseApplication

from cloudmon.server.app import DEFAULT_STORAGE, RETENTION, create_app
from cloudmon.server.auth import read_token
from cloudmon.storage import open_storage

log = logging.getLogger(__name__)
EXPIRE_EVERY = 300.0  # seconds between deletions of expired samples


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


def run_server(
    host: str = "127.0.0.1",
    port: int = 8080,
    storage: str = DEFAULT_STORAGE,
    token_file: str | None = None,
    read_token_file: str | None = None,
    workers: int = 2,
    threads: int = 4,
    dev: bool = False,
    log_level: str = "info",
    retention: float = RETENTION,
) -> int:
    """Serve until stopped; returns the exit status."""
    config = {
        "CLOUDMON_STORAGE": storage,
        "CLOUDMON_TOKEN": read_token(token_file),
        "CLOUDMON_READ_TOKEN": read_token(read_token_file),
        "CLOUDMON_RETENTION": retention,
        "CLOUDMON_EXPIRE_EVERY": EXPIRE_EVERY,
    }
    # Open once before forking: a bad URL fails here and the schema is migrated once.
    open_storage(storage).close()
    log.info(
        "serving on http://%s:%d with %s (ingest token: %s, read token: %s)",
        host,
        port,
        storage,
        "yes" if token_file else "no",
        "yes" if read_token_file else "no",
    )
    if dev:
        create_app(config).run(host=host, port=port, threaded=True)
        return 0
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "loglevel": log_level,
        "errorlog": "-",
        "accesslog": None,
        "control_socket_disable": True,
        "timeout": 60,
        "graceful_timeout": 10,
        "proc_name": "cloudmon-server",
    }
    _Gunicorn(config, options).run()
    return 0
