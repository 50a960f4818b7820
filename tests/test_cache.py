"""The per-process graph cache: single flight, failures not cached, versions never mixed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from graphrun.cache import GraphCache
from graphrun.errors import FactoryError
from graphrun.registry import GraphRegistry
from graphrun.store import SQLStore, open_store

builds: list[dict[str, Any]] = []
fail_next = threading.Event()


def slow_factory(config: dict[str, Any]) -> Any:
    """Takes a while, like a real one (sync: runs in a thread)."""
    builds.append(config)
    time.sleep(0.3)
    if fail_next.is_set():
        fail_next.clear()
        raise RuntimeError("flaky set-up")
    from graphrun.examples.chain import build

    return build(config)


async def parent_factory(config: dict[str, Any]) -> Any:
    from langgraph.graph import END, START, StateGraph

    from graphrun.examples.chain import ChainState
    from graphrun.factory import load_workflow

    child = await load_workflow(config["child"])
    g = StateGraph(ChainState)
    g.add_node("child", child)
    g.add_edge(START, "child")
    g.add_edge("child", END)
    return g


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLStore]:
    s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    yield s
    await s.close()


@pytest.fixture
def cache(store: SQLStore, tmp_path: Path) -> GraphCache:
    (tmp_path / "g.toml").write_text(
        '[graphs]\nslow = "tests.test_cache:slow_factory"\nparent = "tests.test_cache:parent_factory"\n'
    )
    builds.clear()
    fail_next.clear()
    return GraphCache(store, GraphRegistry.load(tmp_path / "g.toml"), max_entries=3)


async def test_concurrent_requests_build_once(cache: GraphCache, store: SQLStore) -> None:
    wf = await store.create_workflow("w", "slow", {"steps": 2})
    graphs = await asyncio.gather(*(cache.get(wf.id, 1) for _ in range(50)))
    assert len(builds) == 1 and cache.builds == 1
    assert all(g is graphs[0] for g in graphs)
    assert await cache.get(wf.id, 1) is graphs[0] and cache.hits >= 1


async def test_failed_build_is_not_cached(cache: GraphCache, store: SQLStore) -> None:
    wf = await store.create_workflow("w", "slow", {"steps": 1})
    fail_next.set()
    results = await asyncio.gather(*(cache.get(wf.id, 1) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, FactoryError) and "flaky set-up" in str(r) for r in results)
    assert len(builds) == 1
    graph = await cache.get(wf.id, 1)  # the next request tries again
    assert (await graph.ainvoke({"n": 0})) == {"n": 1} and len(builds) == 2


async def test_versions_are_never_mixed(cache: GraphCache, store: SQLStore) -> None:
    wf = await store.create_workflow("w", "slow", {"steps": 1})
    v1 = await cache.get(wf.id, 1)
    await store.update_workflow(wf.id, config={"steps": 3})
    v2 = await cache.get(wf.id, 2)
    assert (await v1.ainvoke({"n": 0}), await v2.ainvoke({"n": 0})) == ({"n": 1}, {"n": 3})
    assert cache.peek(wf.id, 1) is None  # superseded at once
    # A build for v1 that finishes after v2 exists is served to v1 only, never cached over v2.
    assert (await (await cache.get(wf.id, 1)).ainvoke({"n": 0})) == {"n": 1}
    assert cache.peek(wf.id, 2) is v2


async def test_bounded_lru(cache: GraphCache, store: SQLStore) -> None:
    ids = [(await store.create_workflow(f"w{i}", "slow", {"steps": 1})).id for i in range(4)]
    for wf_id in ids:
        await cache.get(wf_id, 1)
    assert len(cache) == 3 and cache.peek(ids[0], 1) is None


async def test_sub_workflow_through_the_cache(cache: GraphCache, store: SQLStore) -> None:
    child = await store.create_workflow("child", "slow", {"steps": 2})
    parent = await store.create_workflow("parent", "parent", {"child": "child"})
    graph = await cache.get(parent.id, 1)
    assert (await graph.ainvoke({"n": 1})) == {"n": 3}
    assert cache.peek(child.id, 1) is not None


gate = threading.Event()
entered = threading.Event()


def gated_factory(config: dict[str, Any]) -> Any:
    """Blocks until the test opens the gate: a build that straddles an update."""
    if config.get("gated"):
        entered.set()
        assert gate.wait(10)
    from graphrun.examples.chain import build

    return build({"steps": config["steps"]})


@pytest.fixture
def gated_cache(store: SQLStore, tmp_path: Path) -> GraphCache:
    (tmp_path / "gated.toml").write_text('[graphs]\ngated = "tests.test_cache:gated_factory"\n')
    gate.clear()
    entered.clear()
    return GraphCache(store, GraphRegistry.load(tmp_path / "gated.toml"))


async def test_the_article_race_never_serves_a_stale_graph(gated_cache: GraphCache, store: SQLStore) -> None:
    """A build of v1 starts, the workflow is updated to v2, v2 is built and served, then the v1
    build finishes. In the article's scheme the late `set` stores the old graph under the version
    it reads *now* (v2). Here the key is the version the definition was read at."""
    wf = await store.create_workflow("w", "gated", {"steps": 1, "gated": True})
    slow_v1 = asyncio.create_task(gated_cache.get(wf.id, 1))
    assert await asyncio.to_thread(entered.wait, 10)
    await store.update_workflow(wf.id, config={"steps": 2})
    v2 = await gated_cache.get(wf.id, 2)
    gate.set()
    v1 = await slow_v1
    assert (await v1.ainvoke({"n": 0}), await v2.ainvoke({"n": 0})) == ({"n": 1}, {"n": 2})
    assert gated_cache.peek(wf.id, 2) is v2
    assert gated_cache.versions(wf.id) == [2]  # the late v1 build was not cached over it
    for _ in range(3):
        assert (await (await gated_cache.get(wf.id, 2)).ainvoke({"n": 0})) == {"n": 2}


async def test_sub_workflow_changes_bump_parents_transitively(cache: GraphCache, store: SQLStore) -> None:
    leaf = await store.create_workflow("leaf", "slow", {"steps": 1})
    mid = await store.create_workflow("mid", "parent", {"child": leaf.id})
    top = await store.create_workflow("top", "parent", {"child": mid.id})
    graph = await cache.get(top.id, 1)
    assert (await graph.ainvoke({"n": 0})) == {"n": 1}
    assert {cache.peek(w.id, 1) is not None for w in (leaf, mid, top)} == {True}

    updated = await store.update_workflow(leaf.id, config={"steps": 5})
    assert (await store.get_workflow(mid.id)).version == 2
    assert (await store.get_workflow(top.id)).version == 2
    dropped = cache.invalidate(leaf.id, updated.version)
    assert dropped == {leaf.id, mid.id, top.id} and len(cache) == 0
    fresh = await cache.get(top.id, 2)
    assert (await fresh.ainvoke({"n": 0})) == {"n": 5}


async def test_a_child_changed_during_the_parent_build_is_not_cached(
    gated_cache: GraphCache, store: SQLStore, tmp_path: Path
) -> None:
    (tmp_path / "gated.toml").write_text(
        '[graphs]\ngated = "tests.test_cache:gated_factory"\nparent = "tests.test_cache:parent_factory"\n'
    )
    cache = GraphCache(store, GraphRegistry.load(tmp_path / "gated.toml"))
    child = await store.create_workflow("child", "gated", {"steps": 1})
    parent = await store.create_workflow("parent", "parent", {"child": child.id})
    original = cache.registry.build

    async def build_then_update(name: str, config: dict[str, Any]) -> Any:
        graph = await original(name, config)
        if name == "parent" and (await store.get_workflow(child.id)).version == 1:
            await store.update_workflow(child.id, config={"steps": 7})  # lands mid-build
        return graph

    cache.registry.build = build_then_update  # type: ignore[method-assign]
    graph = await cache.get(parent.id, 1)
    assert (await graph.ainvoke({"n": 0})) == {"n": 7}  # rebuilt with the child's new version


async def test_sub_workflow_cycle_is_an_error(cache: GraphCache, store: SQLStore) -> None:
    a = await store.create_workflow("a", "parent", {"child": "b"})
    await store.create_workflow("b", "parent", {"child": "a"})
    with pytest.raises(FactoryError, match="cycle"):
        await asyncio.wait_for(cache.get(a.id, 1), 10)


async def test_cached_load_needs_no_io(cache: GraphCache, store: SQLStore) -> None:
    wf = await store.create_workflow("w", "slow", {"steps": 1})
    await cache.get(wf.id, 1)
    await store.close()  # any remote check on a hit would now fail
    for _ in range(100):
        assert await cache.get(wf.id, 1) is not None
