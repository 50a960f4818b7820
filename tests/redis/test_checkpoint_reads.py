"""A Redis checkpointer's reads ride out a restart of Redis: a pooled connection the old server closed
fails its first use, and a taken-over run's first read must not fail the run it resumes."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import empty_checkpoint

from graphrun.checkpoint.redis import RedisSaver
from graphrun.redis.batch import CommandBatcher
from graphrun.redis.connections import ConnectionName, shared_client
from graphrun.redis.keys import Keys


async def test_reads_survive_connections_closed_by_the_server(redis_server: str, prefix: str) -> None:
    client = shared_client(redis_server, name=ConnectionName.WORKER)
    batcher = CommandBatcher(client)
    killer = shared_client(redis_server)
    try:
        saver = RedisSaver(client, Keys(prefix), ttl_s=60, batcher=batcher)
        config: Any = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
        checkpoint = empty_checkpoint()
        await saver.aput(config, checkpoint, {"source": "input", "step": -1}, {})
        assert await saver.aget_tuple(config) is not None

        # What a Redis restart does to a process's idle pooled connections.
        ours = [c["id"] for c in await killer.client_list() if c.get("name") == ConnectionName.WORKER]
        assert ours
        for client_id in ours:
            await killer.execute_command("CLIENT", "KILL", "ID", client_id)

        found = await saver.aget_tuple(config)
        assert found is not None and found.checkpoint["id"] == checkpoint["id"]
        for client_id in [c["id"] for c in await killer.client_list() if c.get("name") == ConnectionName.WORKER]:
            await killer.execute_command("CLIENT", "KILL", "ID", client_id)
        listed = [t.checkpoint["id"] async for t in saver.alist(config)]
        assert listed == [checkpoint["id"]]
    finally:
        await batcher.close()
        await client.aclose()
        await killer.aclose()
