"""A LangGraph checkpointer on plain Redis, beside the event log it belongs with.

Checkpoints only matter while an execution runs: a later attempt resumes from them, and they are
deleted when the execution ends. They live where the execution's event log lives, with the same
durability (the embedded Redis keeps an append-only file), and cost one pipelined round trip per
step instead of a database transaction per step. ``langgraph-checkpoint-redis`` needs the RedisJSON
and RediSearch modules, which the embedded server (and many managed ones) do not have.

Layout, per thread (execution id), all under the configured prefix (see :class:`graphrun.redis.keys.Keys`):

- ``checkpoint_ids(thread)``: sorted set of ``ns NUL checkpoint_id``, all with score 0, so that a
  lexicographic range finds the newest checkpoint of a namespace (checkpoint ids sort by time);
- ``checkpoints(thread)``: hash of ``ns NUL checkpoint_id NUL t|c|m|p`` → serializer type,
  checkpoint, JSON metadata, parent checkpoint id;
- ``checkpoint_writes(thread, ns, checkpoint_id)``: hash of ``task_id NUL idx NUL c|t|v|p`` →
  channel, serializer type, value, task path.

Every key carries a TTL as a backstop; ``adelete_thread`` removes them when the execution ends.
What must stay true: one ``aput`` or ``aput_writes`` is one Lua script, so a checkpoint is never
seen half-written, and a run attached with a fence (see :mod:`graphrun.checkpoint.gate`) writes only
while its lease holds its attempt.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from redis.asyncio import Redis
from redis.typing import EncodableT

from graphrun.checkpoint.gate import GatedSaver, Gates
from graphrun.errors import FencedError
from graphrun.redis.batch import CommandBatcher
from graphrun.redis.keys import Keys
from graphrun.redis.retry import RetryPolicy

log = logging.getLogger("graphrun.checkpoint")

# Reads are idempotent, so they ride out a Redis restart (a pooled connection the old server closed
# fails its first use): a take-over's first read must not fail the run it resumes. Writes are not
# retried here: they go through the batcher, fenced by the run's gate.
_READS = RetryPolicy(max_s=1.0, deadline_s=30.0)

_SEP = "\x00"

# KEYS: lease (or ""), checkpoints hash, ids zset. ARGV: attempt, ttl, member, field, value, ...
_PUT = """
if KEYS[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[3], 0, ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return 1
"""

# KEYS: lease (or ""), writes hash. ARGV: attempt, ttl, replace (1/0), field, value, ...
_PUT_WRITES = """
if KEYS[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local cmd = ARGV[3] == '1' and 'HSET' or 'HSETNX'
for i = 4, #ARGV, 2 do redis.call(cmd, KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""


def _member(ns: str, checkpoint_id: str) -> str:
    return f"{ns}{_SEP}{checkpoint_id}"


class RedisSaver(GatedSaver, BaseCheckpointSaver[str]):
    """Async only: graphrun runs every graph with ``astream``."""

    def __init__(self, redis: Redis, keys: Keys, *, ttl_s: int, batcher: CommandBatcher) -> None:
        super().__init__()
        self.redis = redis
        # The process's batcher: deleting a finished execution's checkpoints shares round trips with
        # its other commands.
        self.batcher = batcher
        self.keys = keys
        self.ttl_s = ttl_s
        self.gates = Gates()

    async def _run(
        self,
        config: RunnableConfig,
        task_id: str | None,
        script: str,
        keys: list[str],
        args: list[EncodableT],
    ) -> None:
        """Through the thread's gate when a run is attached (ordered after its events, fenced by its
        lease), else straight to Redis."""
        if (gate := self.gates.of(config)) is not None:
            await gate.write(task_id, script, keys, args)
        elif not await self.redis.eval(script, len(keys) + 1, "", *keys, "", *args):
            raise FencedError(f"execution {config['configurable']['thread_id']}: lease lost; checkpoint not written")

    # -- writing --------------------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = conf.get("checkpoint_ns", "")
        type_, blob = self.serde.dumps_typed(checkpoint)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False).encode("utf-8", "ignore")
        member = _member(ns, checkpoint["id"])
        args: list[EncodableT] = [f"{member}{_SEP}t", type_, f"{member}{_SEP}c", blob, f"{member}{_SEP}m", meta]
        if parent := conf.get("checkpoint_id"):
            args += [f"{member}{_SEP}p", parent]
        keys = [self.keys.checkpoints(thread_id), self.keys.checkpoint_ids(thread_id)]
        if (gate := self.gates.of(config)) is not None:
            gate.namespaces_written.add(ns)
        await self._run(config, None, _PUT, keys, [self.ttl_s, member, *args])
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        conf = config["configurable"]
        key = self.keys.checkpoint_writes(str(conf["thread_id"]), conf.get("checkpoint_ns", ""), conf["checkpoint_id"])
        # As the SQL savers: special channels (errors, interrupts...) replace an earlier write of the
        # same task; ordinary ones are written once (a replayed task does not overwrite them).
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        args: list[EncodableT] = []
        for idx, (channel, value) in enumerate(writes):
            type_, blob = self.serde.dumps_typed(value)
            field = f"{task_id}{_SEP}{WRITES_IDX_MAP.get(channel, idx)}{_SEP}"
            args += [f"{field}c", channel, f"{field}t", type_, f"{field}v", blob, f"{field}p", task_path]
        await self._run(config, task_id, _PUT_WRITES, [key], [self.ttl_s, int(replace), *args])

    async def adelete_thread(self, thread_id: str) -> None:
        thread_id = str(thread_id)
        ids = self.keys.checkpoint_ids(thread_id)
        members = cast(list[bytes], await self.batcher.call("ZRANGE", ids, 0, -1))
        doomed = [self.keys.checkpoints(thread_id), ids]
        for member in members:
            ns, _, checkpoint_id = member.decode().partition(_SEP)
            doomed.append(self.keys.checkpoint_writes(thread_id, ns, checkpoint_id))
        await self.batcher.call("DEL", *doomed)

    # -- reading --------------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = conf.get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)
        if (gate := self.gates.of(config)) is not None:
            if gate.has_no_checkpoint(config):
                return None
            await gate.settle()  # what this run queued is readable once it landed
        if not checkpoint_id:
            newest = cast(
                list[bytes],
                await _READS.call(
                    lambda: self.redis.zrevrangebylex(
                        self.keys.checkpoint_ids(thread_id), f"({ns}\x01", f"[{ns}{_SEP}", start=0, num=1
                    ),
                    "reading checkpoints",
                    log,
                ),
            )
            if not newest:
                return None
            checkpoint_id = newest[0].decode().partition(_SEP)[2]
        return await self._load(thread_id, ns, checkpoint_id)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        if config is None:
            raise ValueError("RedisSaver lists the checkpoints of one thread: give a thread_id")
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        only_ns = conf.get("checkpoint_ns")
        only_id = get_checkpoint_id(config)
        before_id = get_checkpoint_id(before) if before else None
        found = []
        ids = await _READS.call(
            lambda: self.redis.zrange(self.keys.checkpoint_ids(thread_id), 0, -1), "listing checkpoints", log
        )
        for raw in cast(list[bytes], ids):
            ns, _, checkpoint_id = raw.decode().partition(_SEP)
            if only_ns is not None and ns != only_ns:
                continue
            if (only_id and checkpoint_id != only_id) or (before_id and checkpoint_id >= before_id):
                continue
            found.append((checkpoint_id, ns))
        found.sort(reverse=True)  # newest first, as the SQL savers
        yielded = 0
        for checkpoint_id, ns in found:
            if limit is not None and yielded >= limit:
                return
            loaded = await self._load(thread_id, ns, checkpoint_id)
            if loaded is None:  # deleted meanwhile
                continue
            if filter and any(loaded.metadata.get(k) != v for k, v in filter.items()):
                continue
            yielded += 1
            yield loaded

    async def _load(self, thread_id: str, ns: str, checkpoint_id: str) -> CheckpointTuple | None:
        member = _member(ns, checkpoint_id)

        async def read() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hmget(self.keys.checkpoints(thread_id), [f"{member}{_SEP}{part}" for part in "tcmp"])
            pipe.hgetall(self.keys.checkpoint_writes(thread_id, ns, checkpoint_id))
            return await pipe.execute()

        (type_, blob, meta, parent), raw_writes = await _READS.call(read, "reading a checkpoint", log)
        if blob is None:
            return None
        config: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}
        }
        parent_config: RunnableConfig | None = (
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent.decode()}}
            if parent
            else None
        )
        return CheckpointTuple(
            config,
            self.serde.loads_typed((type_.decode(), blob)),
            cast(CheckpointMetadata, json.loads(meta) if meta else {}),
            parent_config,
            self._pending_writes(raw_writes),
        )

    def _pending_writes(self, raw: dict[bytes, bytes]) -> list[PendingWrite]:
        records: dict[tuple[str, int], dict[str, bytes]] = {}
        for name, value in raw.items():
            task_id, idx, part = name.decode().split(_SEP)
            records.setdefault((task_id, int(idx)), {})[part] = value
        ordered = sorted(records.items(), key=lambda item: writes_sort_key(item[1]["p"].decode(), *item[0]))
        return [
            (task_id, record["c"].decode(), self.serde.loads_typed((record["t"].decode(), record["v"])))
            for (task_id, _), record in ordered
        ]

    def get_next_version(self, current: str | None, channel: None) -> str:
        # As LangGraph's own savers: a zero-padded counter (so versions sort) and a random suffix.
        current_v = 0 if current is None else int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"
