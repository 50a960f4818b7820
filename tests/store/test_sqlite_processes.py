"""SQLite used by several processes at once: WAL, busy timeout, atomic versions."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from graphrun.store import open_store

SCRIPT = """
import asyncio, sys
from graphrun.store import open_store
async def main():
    store = await open_store(sys.argv[1])
    for i in range(int(sys.argv[3])):
        await store.update_workflow(int(sys.argv[2]), config={"w": i})
    await store.close()
asyncio.run(main())
"""


async def test_concurrent_processes_never_lose_a_version(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    store = await open_store(url)
    wf = await store.create_workflow("w", "chain", {})
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, url, str(wf.id), "25"]) for _ in range(4)]
    for p in procs:
        assert await asyncio.to_thread(p.wait, 120) == 0
    assert (await store.get_workflow(wf.id)).version == 1 + 4 * 25
    with closing(sqlite3.connect(tmp_path / "shared.db")) as conn:  # WAL is a property of the file
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"
    await store.close()
