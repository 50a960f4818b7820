"""Schema migrations (Alembic), run automatically at start-up.

Several processes may start at once (``graphrun serve`` and its workers, a fleet of API pods), so an
upgrade runs under a lock: a PostgreSQL advisory lock, or a file lock beside the SQLite database.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine

_SCRIPTS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x67726E72  # "grnr": any constant shared by every graphrun process


def _config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    command.upgrade(_config(connection), "head")


@contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # flock locks belong to the open file, so two opens in one process exclude each other too.
    with open(path.with_name(path.name + ".migrate-lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def upgrade_sqlite(engine: Engine) -> None:
    """Blocking (it waits for the file lock): run it in a thread, never on the event loop."""
    db = engine.url.database
    with _file_lock(Path(db) if db and db != ":memory:" else None), engine.begin() as conn:
        _upgrade(conn)


async def upgrade(engine: AsyncEngine) -> None:
    """PostgreSQL: the advisory lock is awaited like any query."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
