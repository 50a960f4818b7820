"""One suite, run against every store backend: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graphrun.errors import ConflictError, NotFoundError, StoreError
from graphrun.store import ExecutionStatus, SQLStore, default_assistant_id, open_store


@pytest.fixture(params=["sqlite", "sqlite-quick-on-loop", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLStore]:
    if request.param.startswith("sqlite"):
        # A worker's SQLite store runs point operations on the event loop; an API process's does not.
        on_loop = request.param == "sqlite-quick-on-loop"
        s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", quick_on_loop=on_loop)
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


# -- workflows as LangGraph assistants ----------------------------------------------------------


async def test_assistant_ids_and_defaults(store: SQLStore) -> None:
    native = await store.create_workflow("w", "chain", {})
    assert str(uuid.UUID(native.assistant_id)) == native.assistant_id
    assert (native.metadata, native.context, native.description) == ({}, {}, None)
    assert (await store.get_workflow_by_assistant(native.assistant_id)).id == native.id
    await store.ensure_default_assistants(["chain", "other"])
    await store.ensure_default_assistants(["chain", "other"])  # idempotent
    default = await store.get_workflow_by_assistant(default_assistant_id("chain"))
    assert (default.name, default.graph, default.config, default.version) == ("chain", "chain", {}, 1)
    assert await store.count_workflows(graph="chain") == 2
    await store.delete_workflow(default.id)
    with pytest.raises(NotFoundError):
        await store.get_workflow_by_assistant(default.assistant_id)
    await store.ensure_default_assistants(["chain"])  # a deleted default comes back
    assert (await store.get_workflow_by_assistant(default.assistant_id)).id == default.id
    with pytest.raises(NotFoundError):
        await store.get_workflow_by_assistant(str(uuid.uuid4()))


async def test_create_assistant_with_id_conflicts(store: SQLStore) -> None:
    aid = str(uuid.uuid4())
    made = await store.create_workflow("a", "chain", {}, assistant_id=aid, metadata={"k": 1}, context={"c": 2})
    assert (made.assistant_id, made.metadata, made.context) == (aid, {"k": 1}, {"c": 2})
    with pytest.raises(ConflictError):
        await store.create_workflow("b", "chain", {}, assistant_id=aid)
    same = await store.create_workflow("b", "chain", {}, assistant_id=aid, if_exists="do_nothing")
    assert same == made
    assert await store.count_workflows() == 1  # the rejected one stored nothing


async def test_search_and_count_workflows(store: SQLStore) -> None:
    a = await store.create_workflow("a", "chain", {}, metadata={"team": "x", "n": 1})
    b = await store.create_workflow("b", "chain", {}, metadata={"team": "x", "n": "1"})
    c = await store.create_workflow("c", "kb", {}, metadata={"team": "y", "flag": True})
    assert [w.id for w in await store.search_workflows()] == [c.id, b.id, a.id]
    assert [w.id for w in await store.search_workflows(sort_order="asc", limit=2)] == [a.id, b.id]
    assert [w.id for w in await store.search_workflows(sort_order="asc", limit=2, offset=2)] == [c.id]
    assert [w.id for w in await store.search_workflows(metadata={"team": "x"}, sort_by="name")] == [b.id, a.id]
    assert [w.id for w in await store.search_workflows(metadata={"n": 1})] == [a.id]  # types matter
    assert [w.id for w in await store.search_workflows(metadata={"flag": True})] == [c.id]
    assert [w.id for w in await store.search_workflows(graph="kb")] == [c.id]
    assert [w.id for w in await store.search_workflows(name="b")] == [b.id]
    assert await store.count_workflows(metadata={"team": "x"}) == 2
    assert await store.count_workflows(graph="nope") == 0
    await store.delete_workflow(a.id)
    assert await store.count_workflows(metadata={"team": "x"}) == 1


async def test_versions_and_set_latest(store: SQLStore) -> None:
    wf = await store.create_workflow("a", "chain", {"steps": 1}, metadata={"m": 1})
    v2 = await store.update_workflow(wf.id, config={"steps": 2}, metadata={"extra": True}, context={"c": 1})
    assert (v2.version, v2.metadata, v2.context) == (2, {"m": 1, "extra": True}, {"c": 1})  # merged
    v3 = await store.update_workflow(wf.id, name="renamed", description="d")
    assert (v3.version, v3.name, v3.description, v3.config) == (3, "renamed", "d", {"steps": 2})
    versions = await store.list_versions(wf.id)
    assert [v.version for v in versions] == [3, 2, 1]
    assert (versions[0].name, versions[2].name, versions[2].metadata) == ("renamed", "a", {"m": 1})
    assert versions[0].created_at is not None
    assert [v.version for v in await store.list_versions(wf.id, metadata={"extra": True})] == [3, 2]
    assert [v.version for v in await store.list_versions(wf.id, limit=1, offset=1)] == [2]
    back = await store.set_latest_version(wf.id, 1)
    assert (back.version, back.config, back.name, back.metadata, back.context) == (1, {"steps": 1}, "a", {"m": 1}, {})
    ex = await store.create_execution(wf.id, {}, None)
    assert ex.workflow_version == 1  # new executions pin the version made latest
    after = await store.update_workflow(wf.id, config={"steps": 4})
    assert (after.version, after.name) == (4, "a")  # past the highest, from the latest's fields
    with pytest.raises(NotFoundError):
        await store.set_latest_version(wf.id, 99)
    with pytest.raises(NotFoundError):
        await store.list_versions(999_999)


# -- threads ------------------------------------------------------------------------------------


async def test_thread_crud(store: SQLStore) -> None:
    t = await store.create_thread(metadata={"user": "u"})
    assert (t.status, t.metadata, t.values, t.interrupts, t.error) == ("idle", {"user": "u"}, None, {}, None)
    assert str(uuid.UUID(t.thread_id)) == t.thread_id
    assert await store.get_thread(t.thread_id) == t
    tid = str(uuid.uuid4())
    await store.create_thread(tid)
    with pytest.raises(ConflictError):
        await store.create_thread(tid, metadata={"x": 1})
    assert (await store.create_thread(tid, metadata={"x": 1}, if_exists="do_nothing")).metadata == {}
    updated = await store.update_thread(t.thread_id, {"graph_id": "chain"})
    assert updated.metadata == {"user": "u", "graph_id": "chain"} and updated.updated_at >= t.updated_at
    await store.set_thread_state(
        t.thread_id, status="interrupted", values={"n": 1}, interrupts={"task": [{"id": "i", "value": 1}]}, error=None
    )
    got = await store.get_thread(t.thread_id)
    assert (got.status, got.values, got.interrupts) == ("interrupted", {"n": 1}, {"task": [{"id": "i", "value": 1}]})
    copy = await store.copy_thread(t.thread_id)
    assert copy.thread_id != t.thread_id
    assert (copy.metadata, copy.values, copy.status) == (got.metadata, got.values, got.status)
    await store.delete_thread(t.thread_id)
    for call in (store.get_thread, store.delete_thread, store.copy_thread):
        with pytest.raises(NotFoundError):
            await call(t.thread_id)
    with pytest.raises(NotFoundError):
        await store.update_thread(t.thread_id, {})


async def test_thread_search_count_and_busy(store: SQLStore) -> None:
    wf = await store.create_workflow("w", "chain", {})
    a = await store.create_thread(metadata={"graph_id": "chain", "n": 1})
    b = await store.create_thread(metadata={"graph_id": "chain"})
    c = await store.create_thread(metadata={"graph_id": "kb"})
    await store.set_thread_state(c.thread_id, status="error", values={"x": [1, 2]}, interrupts={}, error="boom")
    assert [t.thread_id for t in await store.search_threads()] == [c.thread_id, b.thread_id, a.thread_id]
    chain = await store.search_threads(metadata={"graph_id": "chain"}, sort_order="asc")
    assert [t.thread_id for t in chain] == [a.thread_id, b.thread_id]
    assert [t.thread_id for t in await store.search_threads(values={"x": [1, 2]})] == [c.thread_id]
    assert [t.thread_id for t in await store.search_threads(ids=[a.thread_id, "nope"])] == [a.thread_id]
    assert [t.thread_id for t in await store.search_threads(limit=1, offset=1)] == [b.thread_id]
    assert await store.count_threads(metadata={"graph_id": "chain"}) == 2
    assert await store.count_threads(status="error") == 1
    # busy while one of its executions is queued or running; computed, never stored
    ex = await store.create_execution(wf.id, {}, None, thread_id=a.thread_id)
    assert (await store.get_thread(a.thread_id)).status == "busy"
    assert [t.thread_id for t in await store.search_threads(status="busy")] == [a.thread_id]
    assert await store.count_threads(status="idle") == 1
    await store.cancel_queued(ex.id)
    assert (await store.get_thread(a.thread_id)).status == "idle"
    await store.delete_thread(a.thread_id)
    with pytest.raises(NotFoundError):
        await store.get_execution(ex.id)  # a thread's executions go with it


async def test_execution_thread_fields(store: SQLStore) -> None:
    wf = await store.create_workflow("w", "chain", {})
    t = await store.create_thread()
    rid = str(uuid.uuid4())
    opts = {"protocol": "langgraph", "stream_mode": ["values"]}
    ex = await store.create_execution(
        wf.id, {}, None, execution_id=rid, thread_id=t.thread_id, metadata={"m": 1}, options=opts
    )
    assert (ex.id, ex.thread_id, ex.metadata, ex.options) == (rid, t.thread_id, {"m": 1}, opts)
    assert await store.get_execution(rid) == ex
    plain = await store.create_execution(wf.id, {}, None)
    assert (plain.thread_id, plain.metadata, plain.options) == (None, {}, {})
    page = await store.list_executions(10, None, thread_id=t.thread_id)
    assert [e.id for e in page.items] == [rid]


async def test_a_run_stamps_its_threads_metadata_with_it_or_not_at_all(store: SQLStore) -> None:
    wf = await store.create_workflow("w", "chain", {})
    t = await store.create_thread(metadata={"user": "u", "graph_id": "old"})
    stamp = {"graph_id": "chain", "assistant_id": "a"}
    await store.create_execution(wf.id, {}, None, thread_id=t.thread_id, thread_metadata=stamp)
    assert (await store.get_thread(t.thread_id)).metadata == {"user": "u", "graph_id": "chain", "assistant_id": "a"}
    # A run refused (busy, or no such workflow) stamps nothing.
    other = await store.create_thread(metadata={"user": "v"})
    await store.create_execution(wf.id, {}, None, thread_id=other.thread_id)
    with pytest.raises(ConflictError):
        await store.create_execution(
            wf.id, {}, None, thread_id=other.thread_id, thread_metadata=stamp, only_if_idle=True
        )
    with pytest.raises(NotFoundError):
        await store.create_execution(999_999, {}, None, thread_id=other.thread_id, thread_metadata=stamp)
    assert (await store.get_thread(other.thread_id)).metadata == {"user": "v"}


async def test_claims_follow_thread_order(store: SQLStore) -> None:
    wf = await store.create_workflow("w", "chain", {})
    t = await store.create_thread()
    first = await store.create_execution(wf.id, {}, None, thread_id=t.thread_id)
    second = await store.create_execution(wf.id, {}, None, thread_id=t.thread_id)
    other = await store.create_execution(wf.id, {}, None, thread_id=(await store.create_thread()).thread_id)
    assert await store.next_queued_on_thread(t.thread_id) == first.id
    assert await store.claim_execution(second.id) is None  # the later cannot go first
    assert await store.blocked_on_thread(second.id)
    assert not await store.blocked_on_thread(first.id)
    assert await store.claim_execution(other.id) is not None  # other threads are independent
    running = await store.claim_execution(first.id)
    assert running is not None
    assert await store.claim_execution(second.id) is None  # not while one runs
    assert await store.blocked_on_thread(second.id)
    assert await store.next_queued_on_thread(t.thread_id) == second.id
    await store.finish_execution(first.id, running.attempt, ExecutionStatus.SUCCEEDED)
    assert not await store.blocked_on_thread(second.id)
    assert await store.claim_execution(second.id) is not None
    assert not await store.blocked_on_thread(second.id)  # running, not waiting
    assert await store.next_queued_on_thread(t.thread_id) is None


async def test_concurrent_claims_on_one_thread_one_wins(store: SQLStore) -> None:
    wf = await store.create_workflow("w", "chain", {})
    t = await store.create_thread()
    made = [await store.create_execution(wf.id, {}, None, thread_id=t.thread_id) for _ in range(8)]
    ids = [e.id for e in made] * 2  # each claimed twice, all at once
    results = await asyncio.gather(*(store.claim_execution(i) for i in reversed(ids)))
    won = [r for r in results if r is not None]
    assert [r.id for r in won] == [made[0].id]


async def test_only_if_idle_admits_exactly_one_of_concurrent_creates(store: SQLStore) -> None:
    """LangGraph's `reject`: of runs created at once on an idle thread, one is stored; the others
    are refused as busy and store nothing. The check and the insert are one locked step, so several
    API processes cannot all see the thread idle."""
    wf = await store.create_workflow("w", "chain", {})
    t = await store.create_thread()

    async def create() -> str | None:
        try:
            return (await store.create_execution(wf.id, {}, None, thread_id=t.thread_id, only_if_idle=True)).id
        except ConflictError as exc:
            assert exc.status == "busy"
            return None

    results = await asyncio.gather(*(create() for _ in range(10)))
    accepted = [r for r in results if r is not None]
    assert len(accepted) == 1, results
    page = await store.list_executions(100, None, thread_id=t.thread_id)
    assert [e.id for e in page.items] == accepted
    # Busy while it is queued; idle again once it has ended.
    with pytest.raises(ConflictError):
        await store.create_execution(wf.id, {}, None, thread_id=t.thread_id, only_if_idle=True)
    await store.cancel_queued(accepted[0])
    await store.create_execution(wf.id, {}, None, thread_id=t.thread_id, only_if_idle=True)
    with pytest.raises(NotFoundError):
        await store.create_execution(wf.id, {}, None, thread_id=str(uuid.uuid4()))


async def test_concurrent_creates_on_a_thread_are_ordered_as_stored(store: SQLStore) -> None:
    """Runs created at once on one thread get created_at in the order the store took them: the
    thread's order (claims follow created_at) is the order they exist in."""
    wf = await store.create_workflow("w", "chain", {})
    t = await store.create_thread()
    made = await asyncio.gather(*(store.create_execution(wf.id, {}, None, thread_id=t.thread_id) for _ in range(20)))
    by_time = sorted(made, key=lambda e: (e.created_at, e.id))
    assert await store.next_queued_on_thread(t.thread_id) == by_time[0].id
    assert len({e.created_at for e in made}) == 20, "each took the lock in turn"


async def test_metadata_filters_take_any_key(store: SQLStore) -> None:
    odd = {'we"ird.key': [1, {"a": None}], "n": None}
    t = await store.create_thread(metadata=odd)
    assert [x.thread_id for x in await store.search_threads(metadata=odd)] == [t.thread_id]
    assert await store.search_threads(metadata={'we"ird.key': [2]}) == []
    assert await store.count_workflows(metadata={"$[0]": 2**70}) == 0
