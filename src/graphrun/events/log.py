"""Writing and reading one execution's event log (a Redis Stream).

Entry ids are chosen by the writer as ``<ms>-<seq>``: ``seq`` counts the execution's events from 0
and ``ms`` never decreases. Redis refuses an id that is not greater than the last one, so a batch
that is retried after a lost reply cannot be written twice, and a reader can tell exactly how many
events trimming took from it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import NamedTuple, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT

from graphrun.errors import EventLogError, FencedError
from graphrun.events.ids import ZERO, StreamId
from graphrun.events.model import LG_PREFIX, TERMINAL_KINDS, Entry, Event, EventKind
from graphrun.redis.batch import Command, CommandBatcher
from graphrun.redis.errors import redis_errors
from graphrun.redis.keys import Keys
from graphrun.redis.retry import RetryPolicy

log = logging.getLogger("graphrun.events")

MAX_EVENT_BYTES = 1_048_576
# What one write holds at most (but always one event): a chatty node's backlog goes out in several
# bounded round trips, so the process's other commands, which share its pipelines (batch.py), wait
# behind a bounded amount of it.
MAX_EVENTS_PER_WRITE = 500
MAX_WRITE_BYTES = 1_048_576

# A write is on a running execution's path: quicker retries than a reader's reconnects, and a bound,
# after which the write fails (the run then fails or is taken over once its lease lapses).
WRITE_RETRY = RetryPolicy(initial_s=0.05, max_s=1.0, deadline_s=30.0)


# The fenced write: the lease check and the writes are one atomic step, so a worker that lost its
# lease (paused, partitioned) cannot add a single entry after another attempt took over.
_FENCED_XADD = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('FENCED lease not held by attempt ' .. ARGV[1])
end
for i = 4, #ARGV, 4 do
  local r = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], ARGV[i], 'k', ARGV[i + 1], 'd', ARGV[i + 2],
                        't', ARGV[i + 3])
  if type(r) == 'table' and r.err and not string.find(r.err, 'equal or smaller') then
    return r
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class EventLog:
    """Shared by writers and readers of every execution's log in one process. Writes and catch-up
    reads go through ``batcher``, the process's, so that they share round trips with its other
    commands."""

    def __init__(self, redis: Redis, keys: Keys, *, maxlen: int, ttl_s: int, batcher: CommandBatcher) -> None:
        self.redis = redis
        self.batcher = batcher
        self.keys = keys
        self.maxlen = maxlen
        self.ttl_s = ttl_s

    def writer(
        self,
        execution_id: str,
        *,
        live_ttl_s: float,
        next_seq: int = 0,
        last_ms: int = 0,
        fence: tuple[str, int] | None = None,
    ) -> EventWriter:
        """``fence`` = (lease key, attempt): every write then requires that lease to hold that attempt."""
        return EventWriter(self, execution_id, live_ttl_s=live_ttl_s, next_seq=next_seq, last_ms=last_ms, fence=fence)

    async def continue_writer(
        self, execution_id: str, *, live_ttl_s: float, fence: tuple[str, int] | None = None
    ) -> tuple[EventWriter, set[str], set[str]]:
        """A writer that carries on after the log's last entry (a taken-over execution), with the
        LangGraph task ids the log already shows as started and as ended (``node_end``; for a
        LangGraph-protocol run, an ``lg:*`` entry names a task only when it holds its result)."""
        started: set[str] = set()
        ended: set[str] = set()
        last: StreamId | None = None
        cursor = "-"
        while True:
            raw = await self.redis.xrange(self.keys.events(execution_id), min=cursor, max="+", count=1000) or []
            for entry_id, raw_fields in raw:
                last = StreamId.parse(entry_id)  # type: ignore[arg-type]
                fields = cast(dict[bytes, bytes], raw_fields)
                task = fields.get(b"t", b"").decode()
                if task:
                    kind = fields[b"k"].decode()
                    result = kind == EventKind.NODE_END.value or kind.startswith(LG_PREFIX)
                    (ended if result else started).add(task)
            if len(raw) < 1000:
                break
            cursor = f"({last}"
        writer = self.writer(
            execution_id,
            live_ttl_s=live_ttl_s,
            next_seq=last.seq + 1 if last else 0,
            last_ms=last.ms if last else 0,
            fence=fence,
        )
        return writer, started, ended

    async def read(self, execution_id: str, after: StreamId, count: int) -> list[Entry]:
        """Entries strictly after ``after``, oldest first."""
        with redis_errors():
            raw = await self.batcher.call("XRANGE", self.keys.events(execution_id), f"({after}", "+", "COUNT", count)
        return [Entry.from_redis(i, f) for i, f in raw or ()]

    async def last_id(self, execution_id: str) -> StreamId | None:
        raw = await self.redis.xrevrange(self.keys.events(execution_id), max="+", min="-", count=1)
        return StreamId.parse(raw[0][0]) if raw else None  # type: ignore[arg-type]

    async def exists(self, execution_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.events(execution_id)))


class EventWriter:
    """Writes one execution's events in order, batching those produced close together.

    ``emit`` never waits: events queue in memory and one flusher writes what is pending in one
    pipelined round trip (up to MAX_EVENTS_PER_WRITE events or MAX_WRITE_BYTES), so a chatty node
    costs one round trip per batch, not per event.

    Once the runner has decided an execution's outcome it ``seal``s the writer: whatever the run
    still emits while it unwinds (a synchronous node that returns after its cancel, LangGraph's
    own bookkeeping) is dropped, so the log ends with exactly the outcome that was decided and
    nothing a cancelled or timed-out run produced afterwards can reach it.
    """

    def __init__(
        self,
        log_: EventLog,
        execution_id: str,
        *,
        live_ttl_s: float,
        next_seq: int,
        last_ms: int,
        fence: tuple[str, int] | None = None,
    ) -> None:
        self._log = log_
        self._fence = fence
        self.execution_id = execution_id
        self._key = log_.keys.events(execution_id)
        self._live_ttl_s = max(int(live_ttl_s) + log_.ttl_s, 1)
        self._next_seq = next_seq
        self._last_ms = last_ms
        self._pending: list[tuple[StreamId, dict[str, str]]] = []
        self._ops: list[_Op] = []
        self._flusher: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self.closed = False
        self.sealed = False
        self.dropped = 0

    def seal(self) -> None:
        """From now on accept only the terminal event; drop everything else, and anything after it."""
        self.sealed = True

    @property
    def next_seq(self) -> int:
        """The sequence number the next event will get: how many events the log holds."""
        return self._next_seq

    @property
    def fenced(self) -> bool:
        return isinstance(self._error, FencedError)

    def emit(self, kind: EventKind, *, task: str = "", **data: object) -> StreamId | None:
        """Queue one event; its id, or None if a sealed writer dropped it."""
        if self.sealed and (self.closed or kind not in TERMINAL_KINDS):
            self.dropped += 1
            return None
        if self.closed:
            raise EventLogError(f"event log of {self.execution_id} is closed")
        if self._error is not None:
            raise EventLogError(f"writing the event log of {self.execution_id} failed") from self._error
        event = Event(kind, self.execution_id, data)
        payload = event.payload()
        if len(payload) > MAX_EVENT_BYTES:
            payload = Event(
                kind, self.execution_id, {"truncated_bytes": len(payload), **_cut(data)}, event.ts
            ).payload()
        ms = max(int(event.ts * 1000), self._last_ms)
        entry_id = StreamId(ms, self._next_seq)
        self._last_ms, self._next_seq = ms, self._next_seq + 1
        # ``t``, the LangGraph task id, stays inside the stream: a taken-over execution uses it not
        # to publish a finished node's events twice.
        self._pending.append((entry_id, {"k": kind.value, "d": payload, "t": task}))
        if event.terminal:
            self.closed = True
        self._start_flusher()
        return entry_id

    def emit_raw(self, kind: str, data: str, *, task: str = "") -> StreamId | None:
        """Queue one entry whose ``data`` is already the SSE ``data:`` JSON (a LangGraph run's
        ``lg:*`` entries: no ``execution_id``/``ts`` wrapper), never terminal; its id, or None if a
        sealed writer dropped it. Not size-capped: cutting it would make it unreadable to its client."""
        if self.sealed:
            self.dropped += 1
            return None
        if self.closed:
            raise EventLogError(f"event log of {self.execution_id} is closed")
        if self._error is not None:
            raise EventLogError(f"writing the event log of {self.execution_id} failed") from self._error
        ms = max(int(time.time() * 1000), self._last_ms)
        entry_id = StreamId(ms, self._next_seq)
        self._last_ms, self._next_seq = ms, self._next_seq + 1
        self._pending.append((entry_id, {"k": kind, "d": data, "t": task}))
        self._start_flusher()
        return entry_id

    def write_after(self, script: str, keys: list[str], args: list[EncodableT]) -> asyncio.Future[object]:
        """Queue the Lua ``script`` to run once every event emitted so far is in the log: in the same
        round trip as the events when they are still pending. The future holds its result, or the
        exception it raised; queued scripts run in the order they were queued."""
        if self._error is not None:
            raise EventLogError(f"writing the event log of {self.execution_id} failed") from self._error
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._ops.append(_Op(script, keys, args, done, after=self._next_seq))
        self._start_flusher()
        return done

    async def flush(self) -> None:
        """Wait until everything emitted so far is in Redis; raises if it could not be written."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._error is not None:
            raise EventLogError(f"writing the event log of {self.execution_id} failed") from self._error

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._pending or self._ops:
            # One turn of the loop first: what the same turn produced (a node's end and the
            # checkpoint write it releases) then goes in one round trip instead of two.
            await asyncio.sleep(0)
            size = taken = 0
            for _, fields in self._pending[:MAX_EVENTS_PER_WRITE]:
                size += len(fields["d"])
                taken += 1
                if size >= MAX_WRITE_BYTES:
                    break
            batch = self._pending[:taken]
            del self._pending[:taken]
            # A script goes with the batch that holds the last event emitted before it (or later).
            written = self._pending[0][0].seq if self._pending else self._next_seq
            due = next((i for i, op in enumerate(self._ops) if op.after > written), len(self._ops))
            ops, self._ops = self._ops[:due], self._ops[due:]
            try:
                results = await self._write(batch, ops)
            except BaseException as exc:  # noqa: BLE001 - kept and re-raised by flush()/emit()
                self._error = exc
                for op in ops + self._ops:
                    if not op.done.done():
                        op.done.set_exception(exc)
                self._ops = []
                return
            for op, result in zip(ops, results, strict=True):
                if not op.done.done():
                    if isinstance(result, BaseException):
                        op.done.set_exception(result)
                    else:
                        op.done.set_result(result)

    async def _write(self, batch: Sequence[tuple[StreamId, dict[str, str]]], ops: Sequence[_Op]) -> list[object]:
        # Once the terminal event is emitted, every later write (the last one holds it) sets the
        # log's final expiry.
        ttl = self._log.ttl_s if self.closed else self._live_ttl_s
        # Retrying is safe: ids are chosen here, so a batch that got through is not added again, and
        # the scripts written after events are idempotent.
        with redis_errors():
            return await WRITE_RETRY.call(
                lambda: self._send(batch, ops, ttl), f"event log write for {self.execution_id}", log
            )

    async def _send(
        self, batch: Sequence[tuple[StreamId, dict[str, str]]], ops: Sequence[_Op], ttl: int
    ) -> list[object]:
        """One pipelined round trip, shared with the process's other commands (``EventLog.batcher``):
        the events (fenced, or plain XADDs), then the scripts, in order."""
        # EVAL, not EVALSHA: a script Redis does not know (restarted, flushed) would fail alone while
        # the rest of the pipeline ran, out of order. Redis compiles each script body once.
        commands: list[Command] = []
        if batch and self._fence is not None:
            lease_key, attempt = self._fence
            args: list[EncodableT] = [str(attempt), self._log.maxlen, ttl]
            for entry_id, fields in batch:
                args += [str(entry_id), fields["k"], fields["d"], fields["t"]]
            commands.append(("EVAL", _FENCED_XADD, 2, self._key, lease_key, *args))
        elif batch:
            for entry_id, fields in batch:
                flat = [part for pair in fields.items() for part in pair]
                commands.append(("XADD", self._key, "MAXLEN", "~", self._log.maxlen, str(entry_id), *flat))
            commands.append(("EXPIRE", self._key, ttl))
        events = len(commands)
        for op in ops:
            commands.append(("EVAL", op.script, len(op.keys), *op.keys, *op.args))
        results = await self._log.batcher.execute(commands)
        for result in results[:events]:
            if isinstance(result, ResponseError):
                if str(result).startswith("FENCED"):
                    assert self._fence is not None
                    raise FencedError(f"{self.execution_id}: attempt {self._fence[1]} no longer holds the lease")
                # An id not above the last one means an earlier try of this batch got through.
                if "equal or smaller" not in str(result):
                    raise result
        return list(results[events:])


class _Op(NamedTuple):
    """A script queued by ``write_after``."""

    script: str
    keys: list[str]
    args: list[EncodableT]
    done: asyncio.Future[object]
    after: int  # how many events of the log must be in Redis before it runs


def _cut(data: dict[str, object]) -> dict[str, object]:
    """Keep the small fields of an oversized event, replace the large ones with a marker."""
    from graphrun.events.model import dumps

    out: dict[str, object] = {}
    for name, value in data.items():
        text = dumps(value)
        out[name] = value if len(text) <= 1024 else {"truncated": True, "bytes": len(text)}
    return out


__all__ = ["ZERO", "EventLog", "EventWriter"]
