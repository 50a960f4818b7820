"""SQLite's group commit (store/runner.py): writes queued together share one transaction, and still
behave as if each were alone: in order, whole or not at all, one's failure its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from graphrun.store.runner import SQLiteRunner
from tests.helpers import sqlite_write_lock


@pytest.fixture
async def runner(tmp_path: Path) -> SQLiteRunner:
    r = SQLiteRunner(f"sqlite:///{tmp_path / 'group.db'}", quick_on_loop=True)
    await r.run(lambda c: c.execute(sa.text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")), write=True)
    return r


def _insert(k: int, v: str) -> Callable[[sa.Connection], int]:
    def fn(conn: sa.Connection) -> int:
        conn.execute(sa.text("INSERT INTO t (k, v) VALUES (:k, :v)"), {"k": k, "v": v})
        # Sees every write queued before it, in or out of its group.
        return int(conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one())

    return fn


async def _rows(runner: SQLiteRunner) -> list[tuple[int, str]]:
    rows = await runner.run(lambda c: c.execute(sa.text("SELECT k, v FROM t ORDER BY k")).all(), write=False)
    return [(int(k), str(v)) for k, v in rows]


async def test_writes_queued_together_share_transactions_in_order(runner: SQLiteRunner) -> None:
    before = runner.groups
    counts = await asyncio.gather(*(runner.run(_insert(i, "x"), write=True) for i in range(50)))
    assert counts == list(range(1, 51))  # each saw exactly the writes queued before it
    assert runner.groups - before < 10, f"{runner.groups - before} transactions for 50 writes queued at once"
    assert len(await _rows(runner)) == 50
    await runner.close()


async def test_a_failing_write_fails_alone_and_the_rest_of_its_group_commits(runner: SQLiteRunner) -> None:
    await runner.run(_insert(7, "first"), write=True)

    def boom(conn: sa.Connection) -> None:
        conn.execute(sa.text("INSERT INTO t (k, v) VALUES (100, 'half')"))
        raise ValueError("refused after writing")

    results = await asyncio.gather(
        runner.run(_insert(1, "a"), write=True),
        runner.run(_insert(7, "duplicate"), write=True),
        runner.run(boom, write=True),
        runner.run(_insert(2, "b"), write=True),
        return_exceptions=True,
    )
    assert results[0] == 2 and results[3] == 3
    assert isinstance(results[1], sa.exc.IntegrityError)
    assert isinstance(results[2], ValueError)
    # The failing operation's own write is gone with it; nobody else's is.
    assert await _rows(runner) == [(1, "a"), (2, "b"), (7, "first")]
    await runner.close()


async def test_a_write_whose_caller_gave_up_before_it_was_taken_never_runs(runner: SQLiteRunner) -> None:
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def hold(conn: sa.Connection) -> None:
        # Keeps the writer thread busy until the test lets it go: what queues meanwhile waits.
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)
        conn.execute(sa.text("INSERT INTO t (k, v) VALUES (1, 'held')"))

    first = asyncio.ensure_future(runner.run(hold, write=True))
    await asyncio.sleep(0.05)
    doomed = asyncio.ensure_future(runner.run(_insert(2, "never"), write=True))
    kept = asyncio.ensure_future(runner.run(_insert(3, "kept"), write=True))
    await asyncio.sleep(0.05)
    doomed.cancel()
    release.set()
    await first
    assert await kept == 2
    assert await _rows(runner) == [(1, "held"), (3, "kept")]
    await runner.close()


async def test_quick_operations_run_on_the_loop_and_wait_for_a_lock_off_it(
    runner: SQLiteRunner, tmp_path: Path
) -> None:
    """A quick write runs on the event loop, with no thread hop; while another connection holds
    SQLite's write lock it goes to the writer thread instead and waits there, and the loop goes on."""
    before = runner.groups
    assert await runner.run(_insert(1, "inline"), write=True, quick=True) == 1
    assert runner.groups == before and runner.inline_refused == 0  # no hop to the writer thread

    async with sqlite_write_lock(tmp_path / "group.db") as ticks:
        write = asyncio.create_task(runner.run(_insert(2, "waited"), write=True, quick=True))
        await asyncio.sleep(0.3)
        assert not write.done() and runner.inline_refused == 1
        assert ticks[0] >= 10, "the event loop was blocked by the lock"
    assert await write == 2
    assert await _rows(runner) == [(1, "inline"), (2, "waited")]
    await runner.close()
