"""Cross-process invalidation: workflow changes announced over Redis pub/sub.

Correctness never depends on these messages: every entry is keyed by version and executions pin
theirs, so a process that missed one still cannot serve a stale graph. The messages only make
processes drop superseded graphs promptly and build the new version before it is asked for.
"""

from __future__ import annotations

import json
import logging

from redis.asyncio import Redis

from graphrun.cache.graphs import GraphCache
from graphrun.redis.errors import UNAVAILABLE
from graphrun.redis.keys import Keys
from graphrun.redis.pubsub import listen_forever

log = logging.getLogger("graphrun.cache")


class WorkflowChanges:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def announce(self, workflow_id: int, version: int | None) -> None:
        """``version`` is the new one, or None when the workflow was deleted. Best effort: the
        change is already committed, and versions keep every process correct without it."""
        try:
            await self.redis.publish(self.keys.workflow_channel, json.dumps({"id": workflow_id, "version": version}))
        except UNAVAILABLE as exc:
            log.warning("could not announce the change of workflow %s: %s", workflow_id, exc)

    async def listen(self, cache: GraphCache) -> None:
        await listen_forever(self.redis, {self.keys.workflow_channel: lambda raw: self._apply(cache, raw)})

    @staticmethod
    def _apply(cache: GraphCache, raw: bytes) -> None:
        try:
            change = json.loads(raw)
            workflow_id, version = int(change["id"]), change["version"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed workflow-change message: %r", raw[:200])
            return
        dropped = cache.invalidate(workflow_id, None if version is None else int(version))
        if dropped:
            log.info("workflow %s changed: dropped graphs of %s; prewarming", workflow_id, sorted(dropped))
            cache.prewarm(sorted(dropped))
