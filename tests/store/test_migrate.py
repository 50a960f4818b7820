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
