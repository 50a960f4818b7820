"""Start-up migrations on SQLite: serialised by a file lock whose wait must not block the loop."""

from __future__ import annotations

import asyncio
import fcntl
from pathlib import Path

import pytest

from graphrun.store import open_store


@pytest.mark.timeout(60)  # a frozen loop would hang here, and wait_for could not fire
async def test_two_stores_opened_at_once_on_one_file_both_migrate(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    a, b = await asyncio.gather(open_store(url), open_store(url))
    try:
        wf = await a.create_workflow("w", "chain", {})
        assert (await b.get_workflow(wf.id)).name == "w"
    finally:
        await a.close()
        await b.close()


@pytest.mark.timeout(60)
async def test_waiting_for_the_migration_lock_leaves_the_loop_running(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    with open(tmp_path / "g.db.migrate-lock", "w") as lock:  # another process migrating
        fcntl.flock(lock, fcntl.LOCK_EX)
        opening = asyncio.create_task(open_store(url))
        await asyncio.sleep(0.3)  # runs only if the loop is free
        assert not opening.done()
        fcntl.flock(lock, fcntl.LOCK_UN)
    store = await asyncio.wait_for(opening, 30)
    try:
        await store.ping()
    finally:
        await store.close()


async def test_0003_gives_existing_workflows_assistant_ids_and_keeps_their_versions(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from alembic import command

    from graphrun.store.migrate import _config

    db = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0002")
        conn.execute(
            sa.text(
                "INSERT INTO workflows (id, name, graph, config, version, created_at, updated_at) "
                "VALUES (1, 'a', 'chain', '{}', 2, '2024-01-01', '2024-01-01'),"
                " (2, 'b', 'chain', '{}', 1, '2024-01-01', '2024-01-01')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO workflow_versions (workflow_id, version, graph, config, created_at) "
                "VALUES (1, 1, 'chain', '{}', '2024-01-01'), (1, 2, 'chain', '{\"s\": 2}', '2024-01-01'),"
                " (2, 1, 'chain', '{}', '2024-01-01')"
            )
        )
    engine.dispose()
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    try:
        a, b = await store.get_workflow(1), await store.get_workflow(2)
        assert a.assistant_id != b.assistant_id and len(a.assistant_id) == 36
        assert (a.metadata, a.context) == ({}, {})
        assert [(v.version, v.name) for v in await store.list_versions(1)] == [(2, "a"), (1, "a")]
        assert (await store.update_workflow(1, config={})).version == 3
    finally:
        await store.close()
