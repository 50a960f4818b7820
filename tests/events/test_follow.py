"""Following a log: catch-up then live, exactly once, across resumes, trims and expiry."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from graphrun.events.follow import Truncated, follow
from graphrun.events.hub import StreamHub
from graphrun.events.ids import ZERO, StreamId
from graphrun.events.log import EventLog
from graphrun.events.model import Entry, Event, EventKind
from graphrun.redis.batch import CommandBatcher
from graphrun.redis.connections import dedicated_client
from graphrun.redis.keys import Keys
from tests.helpers import wait_until


@pytest.fixture
async def hub(redis: Redis, redis_server: str, batcher: CommandBatcher) -> AsyncIterator[StreamHub]:
    h = StreamHub(redis, lambda: dedicated_client(redis_server), batcher=batcher, block_ms=2000)
    await h.start()
    yield h
    await h.stop()


@pytest.fixture
def log(redis: Redis, prefix: str, batcher: CommandBatcher) -> EventLog:
    return EventLog(redis, Keys(prefix), maxlen=10_000, ttl_s=60, batcher=batcher)


async def no_terminal() -> Event | None:
    return None


async def collect(log: EventLog, hub: StreamHub, ex: str, after: StreamId = ZERO, limit: int | None = None) -> list:
    out: list[Entry | Truncated] = []
    async for item in follow(log, hub, ex, after, no_terminal):
        out.append(item)
        if limit is not None and len(out) >= limit:
            break
    return out


async def test_live_follow_sees_everything_once(log: EventLog, hub: StreamHub) -> None:
    reader = asyncio.create_task(collect(log, hub, "live"))
    await wait_until(lambda: hub.followed == 1, 5, "the reader to subscribe")
    writer = log.writer("live", live_ttl_s=60)
    writer.emit(EventKind.START, workflow_id=1, workflow_version=1, attempt=1)
    for i in range(300):
        writer.emit(EventKind.CUSTOM, data={"i": i})
        if i % 7 == 0:
            await asyncio.sleep(0.001)
    writer.emit(EventKind.COMPLETE, output={})
    await writer.flush()
    got = await asyncio.wait_for(reader, 10)
    assert [e.id.seq for e in got] == list(range(302))
    assert got[-1].kind == "complete"


async def test_resume_at_random_points_equals_one_read(log: EventLog, hub: StreamHub) -> None:
    writer = log.writer("resume", live_ttl_s=60)

    async def produce() -> None:
        writer.emit(EventKind.START, workflow_id=1, workflow_version=1, attempt=1)
        for i in range(400):
            writer.emit(EventKind.CUSTOM, data={"i": i})
            if i % 5 == 0:
                await asyncio.sleep(0.001)
        writer.emit(EventKind.COMPLETE, output={})
        await writer.flush()

    producer = asyncio.create_task(produce())
    rng = random.Random(7)
    seen: list[Entry] = []
    cursor = ZERO
    while not (seen and seen[-1].terminal):
        part = await collect(log, hub, "resume", cursor, limit=rng.randint(1, 12))
        assert not any(isinstance(p, Truncated) for p in part)
        seen += part
        cursor = seen[-1].id if seen else ZERO
    await producer
    whole = await collect(log, hub, "resume")
    assert [(e.id, e.data) for e in seen] == [(e.id, e.data) for e in whole]
    assert len(whole) == 402


async def test_id_beyond_the_end_waits_for_new_events(log: EventLog, hub: StreamHub) -> None:
    writer = log.writer("beyond", live_ttl_s=60)
    first = writer.emit(EventKind.START, workflow_id=1, workflow_version=1, attempt=1)
    await writer.flush()
    reader = asyncio.create_task(collect(log, hub, "beyond", StreamId(first.ms + 1, 0)))
    await wait_until(lambda: hub.followed == 1, 5, "the reader to subscribe")
    await asyncio.sleep(0.1)  # its catch-up read (of nothing) is done, and it waits
    assert not reader.done()
    writer.emit(EventKind.CUSTOM, data={})
    writer.emit(EventKind.COMPLETE, output={})
    await writer.flush()
    got = await asyncio.wait_for(reader, 5)
    assert [e.id.seq for e in got] == [1, 2]  # written after the sleep, so above the cursor


async def test_trimmed_events_are_announced(redis: Redis, prefix: str, hub: StreamHub, batcher: CommandBatcher) -> None:
    small = EventLog(redis, Keys(prefix), maxlen=100, ttl_s=60, batcher=batcher)
    writer = small.writer("trim", live_ttl_s=60)
    for i in range(1000):
        writer.emit(EventKind.CUSTOM, data={"i": i})
    writer.emit(EventKind.COMPLETE, output={})
    await writer.flush()
    got = await collect(small, hub, "trim")
    assert isinstance(got[0], Truncated)
    first = got[1]
    assert isinstance(first, Entry)
    assert got[0].missed == first.id.seq > 0
    assert [e.id.seq for e in got[1:]] == list(range(first.id.seq, 1001))


async def test_expired_log_answers_with_the_stored_terminal(log: EventLog, hub: StreamHub) -> None:
    async def stored() -> Event:
        return Event(EventKind.COMPLETE, "gone", {"output": {"n": 3}}, 1000.0)

    items = [i async for i in follow(log, hub, "gone", ZERO, stored)]
    assert len(items) == 1
    entry = items[0]
    assert isinstance(entry, Entry) and entry.kind == "complete" and '"n":3' in entry.data


async def test_one_reader_connection_for_many_followers(log: EventLog, hub: StreamHub, redis: Redis) -> None:
    readers = [asyncio.create_task(collect(log, hub, f"many{i % 50}")) for i in range(300)]
    await wait_until(lambda: hub.followed == 50, 10, lambda: f"50 streams followed, not {hub.followed}")
    clients = await redis.client_list()
    assert sum(1 for c in clients if c.get("name") == "graphrun-stream-hub") == 1
    for i in range(50):
        w = log.writer(f"many{i}", live_ttl_s=60)
        w.emit(EventKind.START, workflow_id=1, workflow_version=1, attempt=1)
        w.emit(EventKind.COMPLETE, output={"i": i})
        await w.flush()
    results = await asyncio.wait_for(asyncio.gather(*readers), 20)
    assert all([e.kind for e in r] == ["start", "complete"] for r in results)
    assert hub.followed == 0


async def test_slow_follower_catches_up_from_redis(
    redis: Redis, redis_server: str, log: EventLog, batcher: CommandBatcher
) -> None:
    tiny = StreamHub(redis, lambda: dedicated_client(redis_server), batcher=batcher, buffer=10)
    await tiny.start()
    try:
        gen = follow(log, tiny, "slow", ZERO, no_terminal)
        writer = log.writer("slow", live_ttl_s=60)
        writer.emit(EventKind.START, workflow_id=1, workflow_version=1, attempt=1)
        await writer.flush()
        first = await gen.__anext__()  # now live, buffer of 10
        for i in range(200):
            writer.emit(EventKind.CUSTOM, data={"i": i})
            await writer.flush()
        writer.emit(EventKind.COMPLETE, output={})
        await writer.flush()
        await asyncio.sleep(0.2)
        rest = [e async for e in gen]
        assert [first.id.seq] + [e.id.seq for e in rest] == list(range(202))
    finally:
        await tiny.stop()


async def test_a_client_gone_while_subscribing_leaves_nothing_behind(hub: StreamHub, prefix: str) -> None:
    # An SSE client that disconnects while its subscription is being set up (the hub is awaiting
    # Redis) must not stay subscribed: the stream would be read and buffered for no one, forever.
    key = f"{prefix}events:gone-early"
    task = asyncio.create_task(hub.subscribe(key))
    await asyncio.sleep(0)  # the task now awaits Redis inside subscribe()
    assert hub.followed == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub.followed == 0
    sub = await hub.subscribe(key)  # and the stream can be followed again normally
    assert hub.followed == 1
    hub.unsubscribe(sub)
    assert hub.followed == 0


async def test_stop_ends_the_reader_whenever_it_comes(redis: Redis, redis_server: str, batcher: CommandBatcher) -> None:
    # The API stops its hub at shutdown, possibly while the reader is still connecting; a cancel
    # that lands there can be swallowed by redis-py, and stop() must still return.
    for ticks in range(40):
        hub = StreamHub(redis, lambda: dedicated_client(redis_server), batcher=batcher, block_ms=2000)
        await hub.start()
        for _ in range(ticks):
            await asyncio.sleep(0)
        stopping = asyncio.create_task(hub.stop())
        done, _ = await asyncio.wait([stopping], timeout=10)
        assert done, f"stop() did not return when called {ticks} loop ticks after start()"


def test_the_hub_read_is_encoded_as_redis_would_encode_it() -> None:
    from redis.asyncio.connection import Connection

    from graphrun.events.hub import _Cursors

    cursors = _Cursors(count=500, block_ms=5000)
    cursors.set("a", StreamId(1, 0))
    cursors.set("b", StreamId(2, 5))
    cursors.set("c", StreamId(3, 0))
    cursors.pop("b")
    cursors.set("a", StreamId(7, 1))  # moves: keeps its place
    cursors.set("b", StreamId(9, 9))  # followed again: last
    cursors.pop("nope")
    args = ("XREAD", "COUNT", 500, "BLOCK", 5000, "STREAMS", "a", "c", "b", "7-1", "3-0", "9-9")
    expected = Connection().pack_command(*args)
    assert cursors.command() == b"".join(expected)
    assert len(cursors) == 3 and "b" in cursors and "nope" not in cursors
