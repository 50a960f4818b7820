"""The SQLite checkpointer's writes on the event loop (checkpoint/sqlite.py): made there when SQLite
lets them, made through aiosqlite (waiting off the loop) when another connection holds the lock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import empty_checkpoint

from graphrun.checkpoint import checkpoint_path, open_sql_saver
from graphrun.checkpoint.sqlite import LoopFirstSqliteSaver
from graphrun.settings import Settings
from tests.helpers import sqlite_write_lock


async def test_a_write_refused_on_the_loop_is_made_off_it_and_lands_once(settings: Settings, tmp_path: Path) -> None:
    local = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'g.db'}"})
    async with open_sql_saver(local) as saver:
        assert isinstance(saver, LoopFirstSqliteSaver)
        base: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        first = await saver.aput(base, empty_checkpoint(), {"step": 0}, {})
        assert saver.refused == 0

        async with sqlite_write_lock(checkpoint_path(local)) as ticks:
            writes = asyncio.create_task(saver.aput_writes(first, [("n", 1)], "task-1"))
            await asyncio.sleep(0.3)
            assert not writes.done() and saver.refused == 1
            assert ticks[0] >= 10, "the event loop was blocked by the lock"
        await writes

        got = await saver.aget_tuple(first)
        assert got is not None and got.pending_writes == [("task-1", "n", 1)]
        assert [t.metadata["step"] async for t in saver.alist(base)] == [0]
