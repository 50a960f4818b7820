"""Compiled graphs per process, keyed by (workflow id, version).

Compiled graphs cannot be pickled, so every process keeps its own. Versions come from the store and
an execution carries the version pinned at submit, so a hit needs no remote check, and a graph built
for version v is only ever served for version v. What must stay true:

- an entry's key is the version its definition was read at: a build that started before an update
  and finishes after it lands under the old version, never the new one (the article's race);
- a graph that embeds sub-workflows is cached only if no sub-workflow changed while it was built
  (the store bumps the parent's version on every later change, so it cannot go stale after);
- a failed build is never cached; concurrent requests for one key share one build.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from graphrun import metrics
from graphrun.cache.sizing import estimate_size
from graphrun.errors import FactoryError, GraphrunError
from graphrun.factory import BuildContext, current
from graphrun.registry import GraphRegistry
from graphrun.store.base import Store

log = logging.getLogger("graphrun.cache")

Key = tuple[int, int]

# Workflows being built by the current task chain, to refuse sub-workflow cycles instead of
# deadlocking on our own single-flight future.
_building_stack: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar("graphrun_building", default=())

MAX_DEPENDENCY_RETRIES = 3


@dataclass(slots=True)
class Entry:
    graph: Any
    children: frozenset[int] = field(default_factory=frozenset)
    size_bytes: int = 0


class GraphCache:
    def __init__(self, store: Store, registry: GraphRegistry, *, max_entries: int = 64, llm: str | None = None) -> None:
        self.store = store
        self.registry = registry
        self.max_entries = max_entries
        self.llm = llm
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._building: dict[Key, asyncio.Future[Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.hits = 0
        self.misses = 0
        self.builds = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, workflow_id: int, version: int) -> Any | None:
        entry = self._entries.get((workflow_id, version))
        return entry.graph if entry is not None else None

    def versions(self, workflow_id: int) -> list[int]:
        return sorted(v for w, v in self._entries if w == workflow_id)

    async def get(self, workflow_id: int, version: int) -> Any:
        """The compiled graph of this workflow version; builds it once however many ask at once."""
        key = (workflow_id, version)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            metrics.CACHE_HITS.inc()
            return entry.graph
        self.misses += 1
        metrics.CACHE_MISSES.inc()
        if workflow_id in _building_stack.get():
            # Checked before joining a pending build: that build may be our own caller's.
            raise FactoryError(f"workflow {workflow_id} embeds itself (sub-workflow cycle)")
        pending = self._building.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        pending = asyncio.get_running_loop().create_future()
        self._building[key] = pending
        try:
            entry = await self._build(key)
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved: waiters, if any, still get it
            raise
        finally:
            del self._building[key]
        pending.set_result(entry.graph)
        self._store(key, entry)
        return entry.graph

    async def get_current(self, workflow: int | str) -> Any:
        graph, _version = await self._current(workflow)
        return graph

    async def _current(self, workflow: int | str) -> tuple[Any, Key]:
        wf = await (
            self.store.get_workflow(workflow) if isinstance(workflow, int) else self.store.find_workflow(workflow)
        )
        return await self.get(wf.id, wf.version), (wf.id, wf.version)

    def _store(self, key: Key, entry: Entry) -> None:
        workflow_id, version = key
        if any(w == workflow_id and v > version for w, v in self._entries):
            return  # a newer version is cached: this one only served the executions pinned to it
        for old in [k for k in self._entries if k[0] == workflow_id and k[1] < version]:
            self._drop(old)  # superseded at once
        self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))
        self._update_gauges()

    def _drop(self, key: Key) -> None:
        self._entries.pop(key, None)
        metrics.CACHE_INVALIDATIONS.inc()

    def _update_gauges(self) -> None:
        metrics.CACHE_ENTRIES.set(len(self._entries))
        metrics.CACHE_BYTES.set(sum(e.size_bytes for e in self._entries.values()))

    def invalidate(self, workflow_id: int, version: int | None) -> set[int]:
        """A workflow changed (``version`` None: deleted). Drop what it made stale: its older
        versions and, transitively, every cached graph that embeds it. Returns the workflows that
        had an entry dropped."""
        dropped: set[int] = set()
        stale = {workflow_id}
        while stale:
            wf = stale.pop()
            for key, entry in list(self._entries.items()):
                own = key[0] == wf and (version is None or wf != workflow_id or key[1] < version)
                embeds = wf in entry.children
                if own or embeds:
                    self._drop(key)
                    if key[0] not in dropped:
                        dropped.add(key[0])
                        stale.add(key[0])
        self._update_gauges()
        return dropped

    def prewarm(self, workflow_ids: list[int]) -> asyncio.Task[None]:
        """Build the current versions in the background, one after another, so that the next
        execution does not pay the cold build."""

        async def run() -> None:
            for workflow_id in workflow_ids:
                try:
                    await self.get_current(workflow_id)
                except GraphrunError as exc:
                    log.info("prewarm of workflow %s skipped: %s", workflow_id, exc)
                except Exception:
                    log.exception("prewarm of workflow %s failed", workflow_id)

        task = asyncio.get_running_loop().create_task(run(), name="graphrun-prewarm")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def prewarm_popular(self, limit: int, window: timedelta = timedelta(days=1)) -> None:
        if limit <= 0:
            return
        try:
            popular = await self.store.popular_workflows(limit, datetime.now(UTC) - window)
        except GraphrunError as exc:
            log.warning("start-up prewarm skipped: %s", exc)
            return
        if popular:
            await self.prewarm([wf.id for wf in popular])

    async def _build(self, key: Key) -> Entry:
        workflow_id, version = key
        definition = await self.store.get_version(workflow_id, version)
        stack_token = _building_stack.set((*_building_stack.get(), workflow_id))
        try:
            for _attempt in range(MAX_DEPENDENCY_RETRIES):
                children: dict[int, int] = {}

                async def load(ref: int | str, children: dict[int, int] = children) -> Any:
                    graph, (child_id, child_version) = await self._current(ref)
                    children[child_id] = child_version
                    return graph

                started = time.perf_counter()
                token = current.set(BuildContext(load, asyncio.get_running_loop(), self.llm))
                try:
                    graph = await self.registry.build(definition.graph, definition.config)
                except FactoryError:
                    metrics.CACHE_BUILDS.labels(definition.graph, "error").inc()
                    raise
                except GraphrunError as exc:
                    metrics.CACHE_BUILDS.labels(definition.graph, "error").inc()
                    raise FactoryError(f"graph {definition.graph!r}: {exc}") from exc
                finally:
                    current.reset(token)
                seconds = time.perf_counter() - started
                if await self.store.record_dependencies(workflow_id, children):
                    break
                log.info("workflow %s v%s: a sub-workflow changed during the build; rebuilding", *key)
            else:
                raise FactoryError(
                    f"workflow {workflow_id} v{version}: its sub-workflows kept changing while it was built"
                )
        finally:
            _building_stack.reset(stack_token)
        size = await asyncio.to_thread(estimate_size, graph)
        self.builds += 1
        metrics.CACHE_BUILDS.labels(definition.graph, "ok").inc()
        metrics.CACHE_BUILD_SECONDS.labels(definition.graph).observe(seconds)
        log.info(
            "built workflow %s v%s (graph %s) in %.0f ms, ~%.0f KiB%s",
            workflow_id,
            version,
            definition.graph,
            seconds * 1000,
            size / 1024,
            f", embeds {sorted(children)}" if children else "",
        )
        return Entry(graph, frozenset(children), size)
