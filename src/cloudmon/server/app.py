"""The Flask application factory."""

import time
from typing import Any

from flask import Flask

from cloudmon import dashboard
from cloudmon.server import (
    errors,
    exposition,
    health,
    ingest,
    maintenance,
    openapi,
    query,
    rightsize,
)
from cloudmon.server.autoscalers import Autoscalers
from cloudmon.server.state import ServerState
from cloudmon.storage import Storage, open_storage
from cloudmon.storage.base import RETENTION

DEFAULT_STORAGE = "sqlite:///data/cloudmon.db"
MAX_BODY = 16 * 1024 * 1024  # contract section 4: 16 MiB, also after decompression
IN_CLUSTER = "in-cluster"


DEFAULTS = {
    "CLOUDMON_STORAGE": DEFAULT_STORAGE,  # a storage URL or a Storage
    "CLOUDMON_TOKEN": None,  # bearer token ingest requires
    "CLOUDMON_READ_TOKEN": None,  # bearer token the read endpoints and /metrics require
    "CLOUDMON_MAX_BODY": MAX_BODY,
    "CLOUDMON_NOW": time.time,  # the clock
    "CLOUDMON_RETENTION": RETENTION,  # seconds each resolution is kept
    "CLOUDMON_UPKEEP_EVERY": None,  # seconds between rollups and deletions; None: not here
    "CLOUDMON_STORAGE_OPTIONS": {},  # more keyword arguments of the backend
    # HorizontalPodAutoscalers right-sizing reads (`autoscalers.Autoscalers`); IN_CLUSTER:
    # the cluster's the server runs in, none outside one.
    "CLOUDMON_AUTOSCALERS": IN_CLUSTER,
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The cloudmon application; `config` may set any key of DEFAULTS."""
    app = Flask("cloudmon.server")
    app.config.update(DEFAULTS)
    app.config.update(config or {})
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = app.config["CLOUDMON_MAX_BODY"]
    storage = app.config["CLOUDMON_STORAGE"]
    if not isinstance(storage, Storage):
        storage = open_storage(
            storage,
            retention=app.config["CLOUDMON_RETENTION"],
            clock=app.config["CLOUDMON_NOW"],
            **app.config["CLOUDMON_STORAGE_OPTIONS"],
        )
    if app.config["CLOUDMON_AUTOSCALERS"] is IN_CLUSTER:
        app.config["CLOUDMON_AUTOSCALERS"] = Autoscalers.in_cluster()
    server_state = ServerState(storage)
    server_state.registry.register(exposition.LatestCollector(storage, app.config["CLOUDMON_NOW"]))
    app.extensions["cloudmon"] = server_state
    if app.config["CLOUDMON_UPKEEP_EVERY"]:
        maintenance.start(storage, app.config["CLOUDMON_UPKEEP_EVERY"])
    errors.register(app)
    blueprints = (ingest.bp, query.bp, rightsize.bp, health.bp, exposition.bp, openapi.bp)
    for blueprint in (*blueprints, dashboard.bp):
        app.register_blueprint(blueprint)
    app.wsgi_app = ingest.IngestApp(app, server_state)
    return app
