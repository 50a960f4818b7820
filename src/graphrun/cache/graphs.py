"""Compiled graphs per process, keyed by (workflow id, version).

Compiled graphs cannot be pickled, so every process keeps its own. Versions come from the store and
an execution carries the version pinned at submit, so a hit needs no remote check and a graph built
for version v can only ever be served for version v: no stale read is possible, and no clock is
compared.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

from graphrun.errors import FactoryError, GraphrunError
from graphrun.factory import BuildContext, current
from graphrun.registry import GraphRegistry
from graphrun.store.base import Store

log = logging.getLogger("graphrun.cache")

Key = tuple[int, int]


class GraphCache:
    def __init__(self, store: Store, registry: GraphRegistry, *, max_entries: int = 64, llm: str | None = None) -> None:
        self.llm = llm
        self.store = store
        self.registry = registry
        self.max_entries = max_entries
        self._entries: OrderedDict[Key, Any] = OrderedDict()
        self._building: dict[Key, asyncio.Future[Any]] = {}
        self.hits = 0
        self.misses = 0
        self.builds = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, workflow_id: int, version: int) -> Any | None:
        return self._entries.get((workflow_id, version))

    async def get(self, workflow_id: int, version: int) -> Any:
        """The compiled graph of this workflow version; builds it once however many ask at once."""
        key = (workflow_id, version)
        graph = self._entries.get(key)
        if graph is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return graph
        self.misses += 1
        pending = self._building.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._building[key] = pending
            try:
                graph = await self._build(key)
            except BaseException as exc:
                # A failed build is never cached: the next request tries again.
                pending.set_exception(exc)
                pending.exception()  # mark retrieved: waiters, if any, still get it
                raise
            else:
                pending.set_result(graph)
                self._store(key, graph)
            finally:
                del self._building[key]
            return graph
        return await asyncio.shield(pending)

    async def get_current(self, workflow: int | str) -> Any:
        wf = await (
            self.store.get_workflow(workflow) if isinstance(workflow, int) else self.store.find_workflow(workflow)
        )
        return await self.get(wf.id, wf.version)

    def _store(self, key: Key, graph: Any) -> None:
        workflow_id, version = key
        # A newer version supersedes older ones of the same workflow at once.
        for old in [k for k in self._entries if k[0] == workflow_id and k[1] < version]:
            del self._entries[old]
        if any(k[0] == workflow_id and k[1] > version for k in self._entries):
            return  # an even newer version is cached; this one is only for pinned executions
        self._entries[key] = graph
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, workflow_id: int) -> None:
        for key in [k for k in self._entries if k[0] == workflow_id]:
            del self._entries[key]

    async def _build(self, key: Key) -> Any:
        workflow_id, version = key
        definition = await self.store.get_version(workflow_id, version)
        started = time.perf_counter()
        token = current.set(BuildContext(self.get_current, asyncio.get_running_loop(), self.llm))
        try:
            graph = await self.registry.build(definition.graph, definition.config)
        except FactoryError:
            raise
        except GraphrunError as exc:
            raise FactoryError(f"graph {definition.graph!r}: {exc}") from exc
        finally:
            current.reset(token)
        self.builds += 1
        log.info(
            "built workflow %s v%s (graph %s) in %.0f ms",
            workflow_id,
            version,
            definition.graph,
            (time.perf_counter() - started) * 1000,
        )
        return graph
