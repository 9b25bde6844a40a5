"""The Flask application factory."""

import time
from typing import Any

from flask import Flask

from cloudmon.server import errors, exposition, health, ingest, maintenance, openapi, query
from cloudmon.server.state import ServerState
from cloudmon.storage import Storage, open_storage
from cloudmon.storage.base import RETENTION

DEFAULT_STORAGE = "sqlite:///data/cloudmon.db"
MAX_BODY = 16 * 1024 * 1024  # contract section 4: 16 MiB, also after decompression


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """An application; config keys: CLOUDMON_STORAGE (URL or Storage), CLOUDMON_TOKEN,
    CLOUDMON_READ_TOKEN, CLOUDMON_MAX_BODY, CLOUDMON_NOW (the clock), CLOUDMON_RETENTION
    ({resolution: seconds}) and CLOUDMON_UPKEEP_EVERY (seconds between rollups and
    deletions in a background thread; None: none)."""
    app = Flask("cloudmon.server")
    app.config.update(
        CLOUDMON_STORAGE=DEFAULT_STORAGE,
        CLOUDMON_TOKEN=None,
        CLOUDMON_READ_TOKEN=None,
        CLOUDMON_MAX_BODY=MAX_BODY,
        CLOUDMON_NOW=time.time,
        CLOUDMON_RETENTION=RETENTION,
        CLOUDMON_UPKEEP_EVERY=None,
    )
    app.config.update(config or {})
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = app.config["CLOUDMON_MAX_BODY"]
    storage = app.config["CLOUDMON_STORAGE"]
    if not isinstance(storage, Storage):
        storage = open_storage(
            storage, retention=app.config["CLOUDMON_RETENTION"], clock=app.config["CLOUDMON_NOW"]
        )
    server_state = ServerState(storage)
    server_state.registry.register(exposition.LatestCollector(storage, app.config["CLOUDMON_NOW"]))
    app.extensions["cloudmon"] = server_state
    if app.config["CLOUDMON_UPKEEP_EVERY"]:
        maintenance.start(storage, app.config["CLOUDMON_UPKEEP_EVERY"])
    errors.register(app)
    for blueprint in (ingest.bp, query.bp, health.bp, exposition.bp, openapi.bp):
        app.register_blueprint(blueprint)
    return app
