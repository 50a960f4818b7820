"""The event log's writer: explicit ids, batching, idempotent retries, trim and expiry."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from graphrun.errors import BadEventIdError
from graphrun.events.ids import ZERO, StreamId
from graphrun.events.log import MAX_EVENTS_PER_WRITE, MAX_WRITE_BYTES, EventLog, EventWriter
from graphrun.events.model import EventKind
from graphrun.redis.batch import CommandBatcher
from graphrun.redis.keys import Keys


@pytest.fixture
def log(redis: Redis, prefix: str, batcher: CommandBatcher) -> EventLog:
    return EventLog(redis, Keys(prefix), maxlen=100, ttl_s=60, batcher=batcher)


def test_stream_ids_compare_as_numbers() -> None:
    assert StreamId.parse("10-2") > StreamId.parse("9-99")
    assert StreamId.parse("1732451234567-10") > StreamId.parse("1732451234567-9")
    assert str(StreamId.parse("5-0")) == "5-0"
    for bad in ["", "abc", "1", "1-", "-1", "1-2-3", "1.5-0", "99999999999999999999999-0"]:
        with pytest.raises(BadEventIdError):
            StreamId.parse(bad)


def count_round_trips(writer: EventWriter) -> list[int]:
    """Count the writer's round trips to Redis, in the returned one-item list."""
    calls = [0]
    original = writer._write

    async def counting(batch, ops):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return await original(batch, ops)

    writer._write = counting  # type: ignore[method-assign]
    return calls


async def test_ids_count_events_and_batches_are_pipelined(log: EventLog, redis: Redis) -> None:
    writer = log.writer("ex1", live_ttl_s=30)
    calls = count_round_trips(writer)
    ids = [writer.emit(EventKind.CUSTOM, node="n", data={"i": i}) for i in range(500)]
    await writer.flush()
    assert [i.seq for i in ids] == list(range(500))
    assert ids == sorted(ids)
    assert calls[0] < 10, f"{calls[0]} round trips for 500 events produced together"
    entries = await log.read("ex1", ZERO, 1000)
    assert len(entries) <= 500 and entries[-1].id == ids[-1]  # trimmed to about maxlen
    assert await redis.ttl(log.keys.events("ex1")) > 60  # live: event TTL + run time


async def test_a_script_written_after_events_goes_in_their_round_trip(log: EventLog, redis: Redis) -> None:
    """What the checkpointer relies on: a script handed over after some events runs after them, and
    with them (one round trip) when they are still pending; a fenced script is refused."""
    lease = log.keys.lease("ex-script")
    await redis.set(lease, "1")
    writer = log.writer("ex-script", live_ttl_s=30, fence=(lease, 1))
    calls = count_round_trips(writer)
    script = """
    if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
    return redis.call('XLEN', KEYS[2])
    """
    key = log.keys.events("ex-script")
    for i in range(3):
        writer.emit(EventKind.CUSTOM, node="n", data={"i": i})
    assert await writer.write_after(script, [lease, key], ["1"]) == 3  # the events were in first
    assert calls == [1]
    await redis.set(lease, "2")  # another attempt took over
    assert await writer.write_after(script, [lease, key], ["1"]) == 0


async def test_a_backlog_goes_out_in_bounded_writes_and_scripts_keep_their_place(
    redis: Redis, prefix: str, batcher: CommandBatcher
) -> None:
    """A chatty node's backlog is written MAX_EVENTS_PER_WRITE at a time (the process's other
    commands share those round trips and must not wait behind all of it); a script still runs only
    once every event emitted before it is in the log, and does not wait for later ones."""
    log = EventLog(redis, Keys(prefix), maxlen=10_000, ttl_s=60, batcher=batcher)
    lease = log.keys.lease("ex-backlog")
    await redis.set(lease, "1")
    writer = log.writer("ex-backlog", live_ttl_s=30, fence=(lease, 1))
    calls = count_round_trips(writer)
    script = "return redis.call('XLEN', KEYS[1])"
    key = log.keys.events("ex-backlog")
    total = 2 * MAX_EVENTS_PER_WRITE + 200
    for i in range(10):
        writer.emit(EventKind.CUSTOM, node="n", data={"i": i})
    early = writer.write_after(script, [key], [])
    for i in range(10, total):
        writer.emit(EventKind.CUSTOM, node="n", data={"i": i})
    late = writer.write_after(script, [key], [])
    await writer.flush()
    assert calls[0] == 3
    assert await early == MAX_EVENTS_PER_WRITE  # with the first write: after its 10 events, not the rest
    assert await late == total


async def test_large_events_go_out_about_a_megabyte_per_write(log: EventLog, redis: Redis) -> None:
    writer = log.writer("ex-large", live_ttl_s=30)
    calls = count_round_trips(writer)
    for i in range(4):
        writer.emit(EventKind.CUSTOM, node="n", data={"i": i, "blob": "x" * (MAX_WRITE_BYTES // 3)})
    await writer.flush()
    assert calls[0] == 2  # three events reach the limit; the fourth goes in a write of its own
    assert len(await log.read("ex-large", ZERO, 10)) == 4


async def test_terminal_event_closes_and_starts_expiry(log: EventLog, redis: Redis) -> None:
    writer = log.writer("ex2", live_ttl_s=1000)
    writer.emit(EventKind.START, workflow_id=1, workflow_version=1, attempt=1)
    writer.emit(EventKind.COMPLETE, output={"n": 1})
    await writer.flush()
    assert 0 < await redis.ttl(log.keys.events("ex2")) <= 60
    entries = await log.read("ex2", ZERO, 10)
    assert [e.kind for e in entries] == ["start", "complete"]
    assert entries[-1].terminal
    with pytest.raises(Exception, match="closed"):
        writer.emit(EventKind.CUSTOM)


async def test_a_sealed_writer_takes_only_the_terminal_event(log: EventLog) -> None:
    """What a cancelled run emits after its outcome was decided is dropped, quietly: it must neither
    reach the log nor raise into the run that is still unwinding."""
    writer = log.writer("ex5", live_ttl_s=30)
    writer.emit(EventKind.START, workflow_id=1, workflow_version=1, attempt=1)
    writer.emit(EventKind.NODE_START, node="a")
    writer.seal()
    assert writer.emit(EventKind.NODE_END, node="a", output={"n": 1}) is None
    assert writer.emit(EventKind.CANCELLED) is not None
    assert writer.emit(EventKind.CUSTOM, node="a", data={"late": True}) is None
    assert writer.emit(EventKind.COMPLETE, output={}) is None  # a second terminal event, too
    await writer.flush()
    entries = await log.read("ex5", ZERO, 10)
    assert [(e.kind, e.id.seq) for e in entries] == [("start", 0), ("node_start", 1), ("cancelled", 2)]
    assert writer.dropped == 3


async def test_a_retried_batch_is_not_written_twice(log: EventLog) -> None:
    writer = log.writer("ex3", live_ttl_s=30)
    batch = [(StreamId(1000, 0), {"k": "start", "d": "{}"}), (StreamId(1000, 1), {"k": "custom", "d": "{}"})]
    await writer._write(batch, [])
    await writer._write(batch, [])  # as if the first reply had been lost
    assert len(await log.read("ex3", ZERO, 10)) == 2


async def test_oversized_event_is_cut_with_a_marker(log: EventLog) -> None:
    writer = log.writer("ex4", live_ttl_s=30)
    writer.emit(EventKind.NODE_END, node="big", output="x" * 2_000_000)
    await writer.flush()
    (entry,) = await log.read("ex4", ZERO, 10)
    assert len(entry.data) < 10_000
    assert '"truncated_bytes"' in entry.data and '"node":"big"' in entry.data


async def test_concurrent_writers_of_different_executions(log: EventLog) -> None:
    writers = [log.writer(f"c{i}", live_ttl_s=30) for i in range(20)]

    async def chatty(w):  # type: ignore[no-untyped-def]
        for i in range(50):
            w.emit(EventKind.CUSTOM, data={"i": i})
            if i % 10 == 0:
                await asyncio.sleep(0)
        await w.flush()

    await asyncio.gather(*(chatty(w) for w in writers))
    for i in range(20):
        assert len(await log.read(f"c{i}", ZERO, 100)) == 50
