"""One Redis reader per API process, fanning stream entries out to every local SSE client.

The article's reader holds one blocking XREAD, hence one Redis connection, per client. Here a single
connection blocks on a multi-key XREAD over every stream that local clients follow, so Redis
connections per API process stay constant however many clients there are. When the set of streams
changes, the blocked read is woken with CLIENT UNBLOCK from the shared pool.

That XREAD names every followed stream, so its cost grows with their number: the command is kept
encoded between reads (``_Cursors``) so that a read costs a join, not a re-encoding of thousands of
arguments.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from redis.asyncio import Redis

from graphrun.aio import cancel_and_wait
from graphrun.events.ids import ZERO, StreamId
from graphrun.events.model import Entry
from graphrun.metrics import HUB_STREAMS
from graphrun.redis.batch import CommandBatcher
from graphrun.redis.connections import ConnectionName
from graphrun.redis.errors import UNAVAILABLE
from graphrun.redis.retry import RECONNECT

log = logging.getLogger("graphrun.events")

# A read costs Redis and this process time in proportion to the number of streams it names, and
# each delivery costs a socket write per client (on the VM measured, a loopback write was about
# 40% of an API process's CPU under load). While events keep coming, a pause in proportion between
# reads lets each read, and each write to a client, carry more of them: from 10 followed streams on
# (1 ms), up to COALESCE_MAX_S from 50 on, the most it adds to a delivery (decision 0026).
COALESCE_PER_STREAM_S = 100e-6
COALESCE_MAX_S = 0.005


class Subscription:
    """A client's view of one stream: a bounded buffer of live entries.

    If the client falls behind by more than ``maxsize`` entries the buffer is dropped and
    ``overflowed`` is set; the client then catches up from Redis, so memory stays bounded and
    nothing is lost silently.
    """

    def __init__(self, key: str, maxsize: int) -> None:
        self.key = key
        self.maxsize = maxsize
        self.buffer: deque[Entry] = deque()
        self.overflowed = False
        self.wakeup = asyncio.Event()

    def push(self, entries: list[Entry]) -> None:
        if self.overflowed:
            return
        if len(self.buffer) + len(entries) > self.maxsize:
            self.buffer.clear()
            self.overflowed = True
        else:
            self.buffer.extend(entries)
        self.wakeup.set()


def _bulk(value: str) -> bytes:
    raw = value.encode()
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


class _Cursors:
    """The hub's read position in every followed stream, kept ready to send as one XREAD.

    redis-py encodes a command argument by argument: for 2,000 streams that is 4,000 arguments and
    about 3 ms of CPU on every read, paid as delivery latency by every client of the process. Here
    a key is encoded once, when it is first followed, and a position when it moves.
    """

    def __init__(self, count: int, block_ms: int) -> None:
        self._ids: dict[str, StreamId] = {}
        # Both in the same order (a key enters both at once and leaves both at once).
        self._key_wire: dict[str, bytes] = {}
        self._id_wire: dict[str, bytes] = {}
        self._keys_block: bytes | None = None
        args = ("XREAD", "COUNT", str(count), "BLOCK", str(block_ms), "STREAMS")
        self._head = b"".join(_bulk(a) for a in args)

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def set(self, key: str, cursor: StreamId) -> None:
        if key not in self._ids:
            self._key_wire[key] = _bulk(key)
            self._keys_block = None
        self._ids[key] = cursor
        self._id_wire[key] = _bulk(str(cursor))

    def pop(self, key: str) -> None:
        if self._ids.pop(key, None) is not None:
            del self._key_wire[key], self._id_wire[key]
            self._keys_block = None

    def command(self) -> bytes:
        """``XREAD COUNT n BLOCK ms STREAMS key… id…`` in the Redis protocol."""
        if self._keys_block is None:
            self._keys_block = b"".join(self._key_wire.values())
        size = b"*%d\r\n" % (6 + 2 * len(self._ids))
        return b"".join((size, self._head, self._keys_block, *self._id_wire.values()))


class StreamHub:
    """``redis`` is the process's shared client and ``batcher`` its batcher (subscriptions' first
    reads, CLIENT UNBLOCK); ``connect`` makes the reader's own connection (single-connection client,
    no socket timeout shorter than the block)."""

    def __init__(
        self,
        redis: Redis,
        connect: Callable[[], Redis],
        *,
        batcher: CommandBatcher,
        block_ms: int = 5000,
        batch: int = 500,
        buffer: int = 1000,
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._connect_reader = connect
        self._buffer = buffer
        self._subs: dict[str, set[Subscription]] = {}
        self._cursors = _Cursors(batch, block_ms)
        self._changed = asyncio.Event()
        self._generation = 0
        self._read_generation = 0
        self._reader: Redis | None = None
        self._reader_id: int | None = None
        self._blocked = False
        self._task: asyncio.Task[None] | None = None
        self._counted = 0  # this hub's share of graphrun_stream_hub_streams
        self._stopped = False

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="graphrun-stream-hub")

    async def stop(self) -> None:
        self._stopped = True
        self._count()
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self._reader is not None:
            await self._reader.aclose()

    @property
    def followed(self) -> int:
        return len(self._subs)

    def _count(self) -> None:
        """Bring this hub's share of ``graphrun_stream_hub_streams`` to the streams it follows (none
        once stopped). By increments: other hubs of the process (tests, benchmarks) count in it too."""
        followed = 0 if self._stopped else len(self._subs)
        if followed != self._counted:
            HUB_STREAMS.inc(followed - self._counted)
            self._counted = followed

    async def subscribe(self, key: str) -> Subscription:
        """Follow ``key``: every entry added after this call returns reaches the subscription."""
        sub = Subscription(key, self._buffer)
        subs = self._subs.setdefault(key, set())
        subs.add(sub)
        self._count()
        try:
            if key not in self._cursors:
                # Start the shared cursor at the stream's current end; what came before is the
                # subscriber's own catch-up. Anything added from here on is above this id.
                raw = await self._batcher.call("XREVRANGE", key, "+", "-", "COUNT", 1)
                if key in self._subs and key not in self._cursors:
                    self._cursors.set(key, StreamId.parse(raw[0][0]) if raw else ZERO)
                    self._generation += 1
                    self._changed.set()
                    await self._wake_reader()
        except BaseException:
            # The client went away (or Redis failed) before the subscription was handed over.
            self.unsubscribe(sub)
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.key)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            # The next XREAD simply leaves the key out; no need to wake the reader.
            del self._subs[sub.key]
            self._cursors.pop(sub.key)
            self._count()

    async def _wake_reader(self) -> None:
        # CLIENT UNBLOCK only works once the reader's XREAD is blocked in Redis; retry briefly
        # while the reader has not yet picked up the new generation.
        for _ in range(50):
            if not self._blocked or self._reader_id is None or self._read_generation >= self._generation:
                return
            try:
                if await self._batcher.call("CLIENT", "UNBLOCK", self._reader_id):
                    return
            except UNAVAILABLE:
                return  # the reader will reconnect, and reads the new set of streams then
            await asyncio.sleep(0.002)

    async def _connect(self) -> Redis:
        reader = self._connect_reader()
        try:
            self._reader_id = await reader.client_id()
            await reader.client_setname(ConnectionName.STREAM_HUB)
        except BaseException:
            with suppress(Exception):
                await reader.aclose()
            raise
        return reader

    async def _run(self) -> None:
        while True:
            # One read at a time under the retry policy: a read that returns ends an outage.
            resp = await RECONNECT.call(self._read, "the stream hub's read", log)
            for raw_key, raw_entries in resp or ():
                key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                entries = [Entry.from_redis(i, f) for i, f in raw_entries]
                if not entries or key not in self._cursors:
                    continue
                self._cursors.set(key, entries[-1].id)
                for sub in tuple(self._subs.get(key, ())):
                    sub.push(entries)
            if resp and (pause := min(COALESCE_MAX_S, COALESCE_PER_STREAM_S * len(self._cursors))) >= 0.001:
                await asyncio.sleep(pause)

    async def _read(self) -> Any:
        """Connect if need be, then one XREAD over every followed stream (None while none is)."""
        try:
            if self._reader is None:
                self._reader = await self._connect()
            if not self._cursors:
                self._changed.clear()
                await self._changed.wait()
                return None
            self._read_generation = self._generation
            conn = self._reader.connection  # a single-connection client's, set up by _connect
            assert conn is not None
            self._blocked = True
            try:
                await conn.send_packed_command(self._cursors.command(), check_health=False)
                return await self._reader.parse_response(conn, "XREAD")
            finally:
                self._blocked = False
        except UNAVAILABLE:
            if self._reader is not None:
                with suppress(Exception):
                    await self._reader.aclose()
            self._reader = None
            raise
