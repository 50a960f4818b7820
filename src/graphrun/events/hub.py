"""One Redis reader per API process, fanning stream entries out to every local SSE client.

The article's reader holds one blocking XREAD, hence one Redis connection, per client. Here a single
connection blocks on a multi-key XREAD over every stream that local clients follow, so Redis
connections per API process stay constant however many clients there are. When the set of streams
changes, the blocked read is woken with CLIENT UNBLOCK from the shared pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from contextlib import suppress

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from graphrun.connections import ConnectionName
from graphrun.events.ids import ZERO, StreamId
from graphrun.events.model import Entry

log = logging.getLogger("graphrun.events")


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


class StreamHub:
    """``redis`` is the process's shared client; ``connect`` makes the reader's own connection
    (single-connection client, no socket timeout shorter than the block)."""

    def __init__(
        self, redis: Redis, connect: Callable[[], Redis], *, block_ms: int = 5000, batch: int = 500, buffer: int = 1000
    ) -> None:
        self._redis = redis
        self._connect_reader = connect
        self._block_ms = block_ms
        self._batch = batch
        self._buffer = buffer
        self._subs: dict[str, set[Subscription]] = {}
        self._cursors: dict[str, StreamId] = {}
        self._changed = asyncio.Event()
        self._generation = 0
        self._read_generation = 0
        self._reader: Redis | None = None
        self._reader_id: int | None = None
        self._blocked = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="graphrun-stream-hub")

    async def stop(self) -> None:
        if self._task is not None:
            # Cancel until the reader has ended: redis-py can swallow a cancel that lands while it
            # is connecting, and a single one would then leave stop() waiting forever.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait([self._task], timeout=0.1)
            with suppress(asyncio.CancelledError):
                await self._task
        if self._reader is not None:
            await self._reader.aclose()

    @property
    def followed(self) -> int:
        return len(self._subs)

    async def subscribe(self, key: str) -> Subscription:
        """Follow ``key``: every entry added after this call returns reaches the subscription."""
        sub = Subscription(key, self._buffer)
        subs = self._subs.setdefault(key, set())
        subs.add(sub)
        try:
            if key not in self._cursors:
                # Start the shared cursor at the stream's current end; what came before is the
                # subscriber's own catch-up. Anything added from here on is above this id.
                raw = await self._redis.xrevrange(key, max="+", min="-", count=1)
                if key in self._subs and key not in self._cursors:
                    self._cursors[key] = StreamId.parse(raw[0][0]) if raw else ZERO  # type: ignore[arg-type]
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
            self._cursors.pop(sub.key, None)

    async def _wake_reader(self) -> None:
        # CLIENT UNBLOCK only works once the reader's XREAD is blocked in Redis; retry briefly
        # while the reader has not yet picked up the new generation.
        for _ in range(50):
            if not self._blocked or self._reader_id is None or self._read_generation >= self._generation:
                return
            try:
                if await self._redis.client_unblock(self._reader_id):
                    return
            except (RedisConnectionError, RedisTimeoutError):
                return
            await asyncio.sleep(0.002)

    async def _connect(self) -> Redis:
        reader = self._connect_reader()
        self._reader_id = await reader.client_id()
        await reader.client_setname(ConnectionName.STREAM_HUB)
        return reader

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                if self._reader is None:
                    self._reader = await self._connect()
                if not self._cursors:
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                self._read_generation = self._generation
                streams = {k: str(c) for k, c in self._cursors.items()}
                self._blocked = True
                try:
                    resp = await self._reader.xread(streams, count=self._batch, block=self._block_ms)  # type: ignore[arg-type]
                finally:
                    self._blocked = False
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("stream hub lost Redis (%s); reconnecting in %.1fs", exc, backoff)
                if self._reader is not None:
                    with suppress(Exception):
                        await self._reader.aclose()
                self._reader = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for raw_key, raw_entries in resp or ():  # type: ignore[str-unpack]
                key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                entries = [Entry.from_redis(i, f) for i, f in raw_entries]  # type: ignore[str-unpack, arg-type, union-attr]
                if not entries or key not in self._cursors:
                    continue
                self._cursors[key] = entries[-1].id
                for sub in tuple(self._subs.get(key, ())):
                    sub.push(entries)
