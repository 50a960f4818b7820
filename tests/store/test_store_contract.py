"""One suite, run against every store backend: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graphrun.errors import NotFoundError, StoreError
from graphrun.store import ExecutionStatus, SQLStore, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLStore]:
    if request.param == "sqlite":
        s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    else:
        url, schema = request.getfixturevalue("pg_schema")
        s = await open_store(url, connect_args={"options": f"-csearch_path={schema}"})
    yield s
    await s.close()


async def test_workflow_crud(store: SQLStore) -> None:
    wf = await store.create_workflow("w", "chain", {"steps": 2})
    assert (wf.version, wf.config, wf.graph) == (1, {"steps": 2}, "chain")
    assert wf.created_at.tzinfo is not None
    assert await store.get_workflow(wf.id) == wf
    updated = await store.update_workflow(wf.id, config={"steps": 3})
    assert (updated.version, updated.name, updated.config) == (2, "w", {"steps": 3})
    assert updated.updated_at >= wf.updated_at
    renamed = await store.update_workflow(wf.id, name="w2")
    assert (renamed.version, renamed.config) == (3, {"steps": 3})
    assert (await store.get_version(wf.id, 1)).config == {"steps": 2}
    assert (await store.get_version(wf.id, 2)).config == {"steps": 3}
    await store.delete_workflow(wf.id)
    with pytest.raises(NotFoundError):
        await store.get_workflow(wf.id)
    with pytest.raises(NotFoundError):
        await store.update_workflow(wf.id, name="x")
    with pytest.raises(NotFoundError):
        await store.delete_workflow(wf.id)
    # Versions outlive the workflow: executions pinned to them still run.
    assert (await store.get_version(wf.id, 3)).graph == "chain"


async def test_concurrent_updates_each_get_their_own_version(store: SQLStore) -> None:
    wf = await store.create_workflow("w", "chain", {})
    results = await asyncio.gather(*(store.update_workflow(wf.id, config={"steps": i}) for i in range(1, 21)))
    assert sorted(r.version for r in results) == list(range(2, 22))
    for r in results:
        assert (await store.get_version(wf.id, r.version)).config == r.config
    assert (await store.get_workflow(wf.id)).version == 21


async def test_find_by_name_takes_the_newest(store: SQLStore) -> None:
    await store.create_workflow("same", "chain", {})
    newest = await store.create_workflow("same", "chain", {"steps": 2})
    assert (await store.find_workflow("same")).id == newest.id
    with pytest.raises(NotFoundError):
        await store.find_workflow("nope")


async def test_workflow_pages(store: SQLStore) -> None:
    ids = [(await store.create_workflow(f"w{i}", "chain", {})).id for i in range(7)]
    seen: list[int] = []
    cursor = None
    while True:
        page = await store.list_workflows(3, cursor)
        seen += [w.id for w in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ids
    with pytest.raises(StoreError):
        await store.list_workflows(3, "%%%not-a-cursor")


async def test_execution_lifecycle(store: SQLStore) -> None:
    wf = await store.create_workflow("w", "chain", {})
    await store.update_workflow(wf.id, config={"steps": 2})
    ex = await store.create_execution(wf.id, {"n": 0}, 5.0)
    assert (ex.status, ex.workflow_version, ex.attempt, ex.timeout_s) == (ExecutionStatus.QUEUED, 2, 0, 5.0)
    claimed = await store.claim_execution(ex.id)
    assert claimed is not None and claimed.status is ExecutionStatus.RUNNING and claimed.attempt == 1
    assert claimed.started_at is not None
    assert await store.claim_execution(ex.id) is None  # only one claim wins
    assert await store.cancel_queued(ex.id) is None
    assert await store.finish_execution(ex.id, 2, ExecutionStatus.SUCCEEDED, {"n": 2}) is None  # wrong attempt
    done = await store.finish_execution(ex.id, 1, ExecutionStatus.SUCCEEDED, {"n": 2})
    assert done is not None and done.output == {"n": 2} and done.finished_at is not None
    assert await store.finish_execution(ex.id, 1, ExecutionStatus.FAILED, error={"type": "X"}) is None
    assert (await store.get_execution(ex.id)).status is ExecutionStatus.SUCCEEDED


async def test_cancel_queued_and_ids_are_random(store: SQLStore) -> None:
    wf = await store.create_workflow("w", "chain", {})
    a = await store.create_execution(wf.id, {}, None)
    b = await store.create_execution(wf.id, {}, None)
    assert a.id != b.id and len(a.id) >= 20
    cancelled = await store.cancel_queued(a.id)
    assert cancelled is not None and cancelled.status is ExecutionStatus.CANCELLED
    assert await store.claim_execution(a.id) is None
    with pytest.raises(NotFoundError):
        await store.get_execution("missing")
    with pytest.raises(NotFoundError):
        await store.create_execution(999_999, {}, None)


async def test_execution_pages_and_filters(store: SQLStore) -> None:
    w1 = await store.create_workflow("a", "chain", {})
    w2 = await store.create_workflow("b", "chain", {})
    made = [await store.create_execution(w1.id if i % 2 else w2.id, {"i": i}, None) for i in range(9)]
    await store.cancel_queued(made[0].id)
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_executions(4, cursor)
        seen += [e.id for e in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [e.id for e in sorted(made, key=lambda e: (e.created_at, e.id), reverse=True)]
    only_w1 = await store.list_executions(50, None, workflow_id=w1.id)
    assert {e.id for e in only_w1.items} == {e.id for e in made if e.workflow_id == w1.id}
    cancelled = await store.list_executions(50, None, status=ExecutionStatus.CANCELLED)
    assert [e.id for e in cancelled.items] == [made[0].id]


async def test_json_round_trips(store: SQLStore) -> None:
    config = {"nested": {"list": [1, 2.5, "x", None, True]}, "unicode": "日本語"}
    wf = await store.create_workflow("ü", "chain", config)
    assert (await store.get_workflow(wf.id)).config == config


async def test_dependencies_bump_parents_transitively(store: SQLStore) -> None:
    leaf = await store.create_workflow("leaf", "chain", {})
    mid = await store.create_workflow("mid", "chain", {})
    top = await store.create_workflow("top", "chain", {})
    other = await store.create_workflow("other", "chain", {})
    assert await store.record_dependencies(mid.id, {leaf.id: 1})
    assert await store.record_dependencies(top.id, {mid.id: 1})
    assert await store.record_dependencies(top.id, {mid.id: 1})  # idempotent
    await store.update_workflow(leaf.id, config={"x": 1})
    assert [(await store.get_workflow(w.id)).version for w in (leaf, mid, top, other)] == [2, 2, 2, 1]
    assert (await store.get_version(top.id, 2)).config == {}
    # A child that moved on since it was loaded: the parent's graph is stale, don't cache it.
    assert not await store.record_dependencies(mid.id, {leaf.id: 1})
    await store.delete_workflow(mid.id)
    assert (await store.get_workflow(top.id)).version == 3


async def test_popular_workflows(store: SQLStore) -> None:
    from datetime import UTC, datetime, timedelta

    a = await store.create_workflow("a", "chain", {})
    b = await store.create_workflow("b", "chain", {})
    await store.create_workflow("idle", "chain", {})
    for _ in range(3):
        await store.create_execution(b.id, {}, None)
    await store.create_execution(a.id, {}, None)
    since = datetime.now(UTC) - timedelta(hours=1)
    assert [w.id for w in await store.popular_workflows(5, since)] == [b.id, a.id]
    assert [w.id for w in await store.popular_workflows(1, since)] == [b.id]
    assert await store.popular_workflows(5, datetime.now(UTC) + timedelta(hours=1)) == []
