"""Group commit for Redis: the commands that a process's coroutines send at about the same moment go
to Redis in one pipeline.

Why: a worker runs many executions at once, and each sends a few small commands per step (its
events, its checkpoint writes, lease and cancel checks); an API process does the same for every
submit and every stream it opens. Each round trip costs both this process and Redis a socket write
and a read, and redis-py a connection checkout and its per-call bookkeeping. Sent one caller at a
time, those fixed costs were most of a run's Redis cost (bench/FINDINGS.md). Here callers queue
their commands and one sender sends everything queued as one pipeline; while that pipeline is in
flight the next one fills. A caller alone pays what it paid before: one round trip. Under load,
when each turn of the loop has many callers, the batches grow by themselves.

The sender has a connection of its own (made like the client's pool's, but not in it): checking one
out of the pool and back for every pipeline (its condition, locks and readiness checks) cost as much
as the commands themselves at low concurrency. It packs with hiredis (redis-py's pipeline object
costs about twice as much CPU per command: a pool checkout per pipeline, its retry wrapper and
per-command bookkeeping; bench/FINDINGS.md), and reads the replies of a whole pipeline straight from
hiredis's reader, under one time limit that restarts whenever bytes arrive, instead of one awaited
``read_response`` (with its own timeout context) per reply (docs/decisions/0023). Replies go through
the client's own response callbacks, so a caller gets what ``redis.<command>`` would return.

What must stay true:
- the commands of one :meth:`CommandBatcher.execute` call run in Redis in the order given, and a call
  made after another call returned runs after it (one pipeline is in flight at a time, and pipelines
  go out in the order they were filled);
- one caller's failing command fails only that command (its exception is its result), and a caller
  whose commands cannot be encoded fails alone, before anything is sent; a lost connection fails
  every call of that pipeline, each of which may retry (the next pipeline connects again);
- a caller that stops waiting (cancelled) does not disturb the others: its commands may still run;
- a pipeline holds everything queued when it is taken, so a caller waits behind what was queued
  before it, no more. What bounds that is the callers: an event writer sends at most
  ``MAX_EVENTS_PER_WRITE`` events (and about 1 MB) per call and has one call in flight
  (``events/log.py``), so a chatty run adds a bounded amount per round trip. Lease renewals, whose
  lateness matters most, do not go through the batcher at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from hiredis import pack_command  # a dependency: redis[hiredis]
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio import Connection, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT

from graphrun.aio import cancel_and_wait

Command = Sequence[EncodableT]
"""A command: its name (one word: "XADD", not "CLIENT UNBLOCK") and arguments."""


class CommandBatcher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._callbacks = redis.response_callbacks
        self._conn: Connection | None = None
        self._queued: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None
        self._closed = False
        self.pipelines = 0  # sent so far (tests and benchmarks read it)

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Run ``commands`` in order; their replies, each failing command's exception in its place."""
        if self._closed:
            raise RedisConnectionError("the process's Redis batcher is closed (shutting down)")
        if not commands:
            return []
        done: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queued.append((commands, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_all(), name="graphrun-redis-batch")
        return await done

    async def call(self, *command: EncodableT) -> Any:
        """One command; raises its error."""
        (reply,) = await self.execute((command,))
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def close(self) -> None:
        """Shutting down: whoever still waits gets a connection error (as if Redis were gone), and
        so do later calls."""
        self._closed = True
        if self._sender is not None:
            await cancel_and_wait(self._sender)
        if self._conn is not None:
            await self._conn.disconnect()

    async def _send_all(self) -> None:
        # No extra turn of the loop before sending: this task starts on the loop's next turn, after
        # every caller of this one has queued, and later batches fill while one is in flight.
        sent: list[_Call] = []
        try:
            while self._queued:
                payload, sent = self._take()
                if sent:
                    await self._send(payload, sent)
                sent = []
        except asyncio.CancelledError:  # closing: nobody waits forever
            _fail(sent + self._queued, RedisConnectionError("the process's Redis batcher was closed"))
            self._queued = []
            raise

    def _take(self) -> tuple[bytes, list[_Call]]:
        """Everything queued, in order, packed caller by caller: one whose arguments cannot be
        encoded fails alone, unsent."""
        payload: list[bytes] = []
        sent: list[_Call] = []
        for call in self._queued:
            try:
                # (hiredis's stub types the tuple as 1-long; it takes any length)
                payload += [pack_command(tuple(command)) for command in call[0]]  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - whatever hiredis refuses is that caller's error
                _fail([call], exc if isinstance(exc, DataError) else DataError(f"cannot send to Redis: {exc}"))
                continue
            sent.append(call)
        self._queued = []
        return b"".join(payload), sent

    async def _send(self, payload: bytes, sent: list[_Call]) -> None:
        self.pipelines += 1
        conn = self._conn
        if conn is None:
            conn = self._conn = self.redis.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            if conn.is_connected and await conn.can_read():
                # Closed by the server meanwhile (a restart) or holding stray bytes: start afresh,
                # as the pool's checkout did, rather than fail this pipeline.
                await conn.disconnect()
            # Connects first if need be (and PINGs a connection idle past its health-check
            # interval); a failed write disconnects, so the next pipeline reconnects.
            await conn.send_packed_command(payload)
            if isinstance(conn._parser, _AsyncHiredisParser):
                replies = await _read_replies(conn, conn._parser, sent, self._callbacks)
            else:
                replies = await _read_each(conn, sent, self._callbacks)
        except BaseException as exc:
            # A lost connection (each caller decides whether to retry), an unparsable reply (maybe
            # sent: not resent) or this sender being cancelled: the replies still due would be
            # read as the next pipeline's, so this connection is done.
            await conn.disconnect(nowait=True)
            if not isinstance(exc, Exception):
                raise
            _fail(sent, exc)
            return
        start = 0
        for commands, done in sent:
            end = start + len(commands)
            if not done.done():
                done.set_result(replies[start:end])
            start = end


async def _read_replies(
    conn: Connection, parser: _AsyncHiredisParser, sent: list[_Call], callbacks: Mapping[Any, Any]
) -> list[Any]:
    """The replies of a pipeline, straight from hiredis's reader: a failing command's error in its
    place; a connection error (or no bytes for the socket timeout) fails them all."""
    reader: Any = parser._reader  # (a hiredis.Reader once connected; redis-py types it None)
    push: Any = parser._hiredis_PushNotificationType  # (RESP3's push type, if hiredis has one)
    replies: list[Any] = []
    loop = asyncio.get_running_loop()
    limit = conn.socket_timeout
    try:
        async with asyncio.timeout(None if limit is None else loop.time() + limit) as deadline:
            for commands, _ in sent:
                for command in commands:
                    while True:
                        reply = reader.gets()
                        if reply is NOT_ENOUGH_DATA:
                            await parser.read_from_socket()  # type: ignore[no-untyped-call]
                            if limit is not None:
                                deadline.reschedule(loop.time() + limit)  # no bytes for this long: down
                            continue
                        if push is not None and isinstance(reply, push):
                            await parser.handle_push_response(reply)  # type: ignore[no-untyped-call]  # not ours
                            continue
                        break
                    # As redis-py's parser and read_response: a connection error fails the pipeline, a
                    # command's error is that command's reply.
                    if isinstance(reply, RedisConnectionError):
                        raise reply
                    if isinstance(reply, list) and reply and isinstance(reply[0], RedisConnectionError):
                        raise reply[0]
                    if isinstance(reply, ResponseError):
                        replies.append(reply)
                        continue
                    name = command[0]
                    callback = callbacks.get(name) if isinstance(name, str) else None
                    replies.append(reply if callback is None else callback(reply))
    except TimeoutError:
        raise RedisTimeoutError("Timeout reading from Redis") from None
    if conn.health_check_interval:
        conn.next_health_check = loop.time() + conn.health_check_interval
    return replies


async def _read_each(conn: Connection, sent: list[_Call], callbacks: Mapping[Any, Any]) -> list[Any]:
    """The replies of a pipeline, one ``read_response`` each (a connection without hiredis)."""
    replies: list[Any] = []
    for commands, _ in sent:
        for command in commands:
            try:
                reply = await conn.read_response()
            except ResponseError as exc:  # that command's error; the connection is fine
                replies.append(exc)
                continue
            name = command[0]
            callback = callbacks.get(name) if isinstance(name, str) else None
            replies.append(reply if callback is None else callback(reply))
    return replies


_Call = tuple[Sequence[Command], "asyncio.Future[list[Any]]"]


def _fail(calls: list[_Call], exc: BaseException) -> None:
    for _, done in calls:
        if not done.done():  # (a caller that stopped waiting)
            done.set_exception(exc)
