"""The Flask application factory."""

import time
from typing import Any

from flask import Flask

from cloudmon.server import errors, exposition, health, ingest, maintenance, openapi, query
from cloudmon.server.state import ServerState
from cloudmon.storage import Storage, open_storage

DEFAULT_STORAGE = "sqlite:///data/cloudmon.db"
RETENTION = 7 * 86400  # raw 10 s samples; to become 24 h once 1 min and 1 h rollups exist
MAX_BODY = 16 * 1024 * 1024  # contract section 4: 16 MiB, also after decompression


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """An application; config keys: CLOUDMON_STORAGE (URL or Storage), CLOUDMON_TOKEN,
    CLOUDMON_READ_TOKEN, CLOUDMON_MAX_BODY, CLOUDMON_NOW (the clock), CLOUDMON_RETENTION
    (seconds) and CLOUDMON_EXPIRE_EVERY (seconds; None: no background expiry)."""
    app = Flask("cloudmon.server")
    app.config.update(
        CLOUDMON_STORAGE=DEFAULT_STORAGE,
        CLOUDMON_TOKEN=None,
        CLOUDMON_READ_TOKEN=None,
        CLOUDMON_MAX_BODY=MAX_BODY,
        CLOUDMON_NOW=time.time,
        CLOUDMON_RETENTION=RETENTION,
        CLOUDMON_EXPIRE_EVERY=None,
    )
    app.config.update(config or {})
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = app.config["CLOUDMON_MAX_BODY"]
    storage = app.config["CLOUDMON_STORAGE"]
    if not isinstance(storage, Storage):
        storage = open_storage(storage)
    server_state = ServerState(storage)
    server_state.registry.register(exposition.LatestCollector(storage, app.config["CLOUDMON_NOW"]))
    app.extensions["cloudmon"] = server_state
    every = app.config["CLOUDMON_EXPIRE_EVERY"]
    if every:
        retention = app.config["CLOUDMON_RETENTION"]
        maintenance.start(storage, app.config["CLOUDMON_NOW"], retention, every)
    errors.register(app)
    for blueprint in (ingest.bp, query.bp, health.bp, exposition.bp, openapi.bp):
        app.register_blueprint(blueprint)
    return app
