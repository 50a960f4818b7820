"""The Redis command batcher (graphrun/redis/batch.py), against a real Redis server."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError

from graphrun.redis.batch import CommandBatcher


async def test_callers_of_one_moment_share_one_round_trip(redis: Redis, prefix: str) -> None:
    batcher = CommandBatcher(redis)
    before = batcher.pipelines
    replies = await asyncio.gather(
        *(batcher.execute([("SET", f"{prefix}k{i}", i), ("GET", f"{prefix}k{i}")]) for i in range(50))
    )
    assert batcher.pipelines - before == 1
    # Each caller gets its own replies, in its own order.
    assert [r[1] for r in replies] == [str(i).encode() for i in range(50)]


async def test_a_caller_alone_is_sent_at_once_and_order_holds_across_calls(redis: Redis, prefix: str) -> None:
    batcher = CommandBatcher(redis)
    key = f"{prefix}list"
    for i in range(20):
        assert await batcher.call("RPUSH", key, i) == i + 1
    assert batcher.pipelines == 20
    assert await redis.lrange(key, 0, -1) == [str(i).encode() for i in range(20)]


async def test_calls_queued_while_a_pipeline_is_in_flight_go_in_the_next_one(redis: Redis, prefix: str) -> None:
    batcher = CommandBatcher(redis)
    first = asyncio.ensure_future(batcher.call("SET", f"{prefix}a", 1))
    while batcher.pipelines == 0:  # until the first pipeline is on its way
        await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batcher.call("INCR", f"{prefix}b")) for _ in range(30)]
    await asyncio.gather(first, *rest)
    assert batcher.pipelines == 2
    assert sorted(r.result() for r in rest) == list(range(1, 31))


async def test_a_failing_command_fails_only_itself(redis: Redis, prefix: str) -> None:
    batcher = CommandBatcher(redis)
    await redis.set(f"{prefix}str", "x")
    good, bad = await asyncio.gather(
        batcher.execute([("SET", f"{prefix}ok", 1), ("GET", f"{prefix}ok")]),
        batcher.execute([("INCR", f"{prefix}str"), ("GET", f"{prefix}str")]),
    )
    assert good == [True, b"1"]
    assert isinstance(bad[0], ResponseError) and bad[1] == b"x"
    with pytest.raises(ResponseError):
        await batcher.call("INCR", f"{prefix}str")


async def test_a_cancelled_caller_does_not_disturb_the_others(redis: Redis, prefix: str) -> None:
    batcher = CommandBatcher(redis)
    gone = asyncio.ensure_future(batcher.call("SET", f"{prefix}gone", 1))
    stays = asyncio.ensure_future(batcher.call("INCR", f"{prefix}n"))
    await asyncio.sleep(0)  # both are queued now
    gone.cancel()
    assert await stays == 1
    assert gone.cancelled()
    assert await redis.get(f"{prefix}gone") == b"1"  # its command still ran; nobody read its reply
    assert await batcher.call("INCR", f"{prefix}n") == 2


async def test_an_unreachable_redis_fails_every_call_of_the_pipeline(prefix: str) -> None:
    # Nothing listens on port 1; no retries, so the test is quick.
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    batcher = CommandBatcher(dead)
    results = await asyncio.gather(
        batcher.call("GET", f"{prefix}x"), batcher.call("GET", f"{prefix}y"), return_exceptions=True
    )
    assert all(isinstance(r, RedisConnectionError | OSError) for r in results), results
    await batcher.close()
    await dead.aclose()


async def test_a_command_that_breaks_the_pipeline_fails_only_its_caller(redis: Redis, prefix: str) -> None:
    batcher = CommandBatcher(redis)
    good, bad = await asyncio.gather(
        batcher.call("INCR", f"{prefix}good"),
        batcher.call("SET", f"{prefix}bad", {"not": "encodable"}),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert good == 1
    assert isinstance(bad, DataError), bad
    assert await batcher.call("INCR", f"{prefix}good") == 2


async def test_closing_while_a_pipeline_is_in_flight_leaves_no_caller_waiting(redis: Redis, prefix: str) -> None:
    batcher = CommandBatcher(redis)
    slow = asyncio.ensure_future(batcher.call("BLPOP", f"{prefix}empty", 20))  # in flight for 20 s
    await asyncio.sleep(0.1)
    queued = asyncio.ensure_future(batcher.call("PING"))  # waits for the next pipeline
    await asyncio.sleep(0.05)
    started = asyncio.get_running_loop().time()
    await batcher.close()
    for call in (slow, queued):
        with pytest.raises(RedisConnectionError, match="closed"):
            await asyncio.wait_for(call, 10)
    assert asyncio.get_running_loop().time() - started < 10
    with pytest.raises(RedisConnectionError, match="closed"):
        await batcher.call("PING")


async def test_the_batcher_has_a_connection_of_its_own(redis_server: str, prefix: str) -> None:
    """It does not wait for the client's pool (whose only connection is taken here), and closing it
    closes its connection."""
    client = Redis.from_pool(BlockingConnectionPool.from_url(redis_server, max_connections=1, timeout=20))
    held = await client.connection_pool.get_connection()  # the pool's only connection
    batcher = CommandBatcher(client)
    try:
        assert await asyncio.wait_for(batcher.call("INCR", f"{prefix}own"), 5) == 1
        assert batcher._conn is not None and batcher._conn.is_connected
        await batcher.close()
        assert not batcher._conn.is_connected
    finally:
        await client.connection_pool.release(held)
        await client.aclose()


async def test_a_connection_the_server_closed_is_replaced_before_the_next_pipeline(redis: Redis, prefix: str) -> None:
    """As the pool's checkout did: a connection Redis dropped meanwhile (a restart, a CLIENT KILL)
    is noticed before a pipeline is sent on it, so that pipeline does not fail."""
    batcher = CommandBatcher(redis)
    assert await batcher.call("INCR", f"{prefix}n") == 1
    assert batcher._conn is not None
    own_id = int(await batcher.call("CLIENT", "ID"))
    await redis.client_kill_filter(_id=own_id)
    await asyncio.sleep(0.1)  # the loop sees the socket's end
    assert await batcher.call("INCR", f"{prefix}n") == 2
    assert int(await batcher.call("CLIENT", "ID")) != own_id
    await batcher.close()
