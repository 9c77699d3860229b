"""The composition root: builds every long-lived object in order and tears them down in reverse.

`open_context(config)` is the only place that opens the database, builds clients and
registers readiness checks and background work; `close_context` undoes it. The CLI, the demo
and the tests all go through it, so they run the same wiring.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Protocol

from .config import Config
from .db import Database
from .health import Health
from .metrics import Metrics

log = logging.getLogger(__name__)


class Background(Protocol):
    """Something that owns threads: started after the app is built, stopped before the db closes."""

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...


@dataclass
class Context:
    config: Config
    db: Database
    metrics: Metrics
    health: Health
    started_at: float = field(default_factory=time.time)
    background: list[Background] = field(default_factory=list)

    def start_background(self) -> None:
        for part in self.background:
            part.start()

    def stop_background(self) -> None:
        """Stop in reverse order, sharing `server.shutdown_timeout` between the parts."""
        deadline = time.monotonic() + self.config["server.shutdown_timeout"]
        for part in reversed(self.background):
            part.stop(max(0.1, deadline - time.monotonic()))


def _database_writable(db: Database) -> str:
    # BEGIN IMMEDIATE takes the write lock: it proves writability without writing anything.
    conn = db.conn()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ROLLBACK")
    return f"schema version {db.user_version()}"


def open_context(config: Config) -> Context:
    """Open the database (migrating it), build the metrics, checks and background parts."""
    os.makedirs(config["data.dir"], exist_ok=True)
    db = Database(config.database_path)
    try:
        db.migrate()
    except BaseException:
        db.close()
        raise
    metrics = Metrics()
    health = Health(metrics)
    ctx = Context(config=config, db=db, metrics=metrics, health=health)
    health.add("database", lambda: _database_writable(db))
    return ctx


def close_context(ctx: Context) -> None:
    ctx.db.close()
