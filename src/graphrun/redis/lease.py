"""Execution leases: which worker runs an execution, with a fencing token.

A running execution holds ``lease:<id>`` = its attempt number, with a time-to-live the holder keeps
renewing. The attempt number is the fencing token: the store refuses a final status from another
attempt, and the event log refuses an entry unless the lease still holds the writer's attempt (the
check and the write are one Lua script). A worker that was paused or partitioned past its lease
finds its renewals refused, stops, and none of its late writes land.
"""

from __future__ import annotations

from redis.asyncio import Redis

from graphrun.redis.batch import CommandBatcher
from graphrun.redis.keys import Keys
from graphrun.redis.locks import RELEASE_IF_OWNER, RENEW_IF_OWNER


class Leases:
    """Acquiring and releasing go through ``batcher``, the process's: a
    pick-up's lease and cancel-flag reads share a round trip, and so do those of executions picked
    up together. Renewals do not (see :meth:`renew`)."""

    def __init__(self, redis: Redis, keys: Keys, ttl_s: float, *, batcher: CommandBatcher) -> None:
        self.redis = redis
        self.batcher = batcher
        self.keys = keys
        self.ttl_ms = int(ttl_s * 1000)

    def key(self, execution_id: str) -> str:
        return self.keys.lease(execution_id)

    async def acquire(self, execution_id: str, attempt: int) -> bool:
        return bool(await self.batcher.call("SET", self.key(execution_id), str(attempt), "NX", "PX", self.ttl_ms))

    async def renew(self, execution_id: str, attempt: int) -> bool:
        # Straight to Redis, not through the batcher: a renewal must not wait behind a large batch.
        return bool(await self.redis.eval(RENEW_IF_OWNER, 1, self.key(execution_id), str(attempt), self.ttl_ms))

    async def release(self, execution_id: str, attempt: int) -> None:
        await self.batcher.call("EVAL", RELEASE_IF_OWNER, 1, self.key(execution_id), str(attempt))

    async def holders(self, execution_ids: list[str]) -> dict[str, int | None]:
        """The attempt holding each execution's lease, or None where no lease is held."""
        if not execution_ids:
            return {}
        raw = await self.redis.mget([self.key(i) for i in execution_ids])
        return {i: int(v) if v is not None else None for i, v in zip(execution_ids, raw, strict=True)}
