"""Running one execution: claim it, build (or fetch) its graph, stream it, record the outcome.

What must stay true:
- only the worker whose claim succeeded (queued → running) runs an execution, only while it holds
  the execution's lease (its attempt number fences every write: events and final status), and
  only if no cancel was requested by the time it read the flag after its claim;
- a taken-over execution resumes from its last LangGraph checkpoint, and a node whose end is
  already in the log is not published again;
- every log it writes ends with exactly one terminal event, and starts with ``start`` if the run
  began (one cancelled at pick-up has just ``cancelled``);
- a first attempt waits, before its first node, until its start grace after the pick-up is over, a
  client follows it, or a cancel arrives (which then wins without a node having run);
- the outcome is decided once, by whichever comes first: the run ends, a cancel arrives, the time
  limit passes. A run that is still going then is not waited for (a synchronous node cannot be
  stopped), and nothing it emits or returns afterwards reaches the log or the store;
- the final status is stored before the terminal event is written, so a client that saw the
  terminal event reads the final status from the API;
- an exception in a factory or a node fails that execution only, never the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from graphrun import metrics
from graphrun.cache import GraphCache
from graphrun.checkpoint.gate import GatedSaver, Gates, RunGate
from graphrun.errors import BackendUnavailableError, FactoryError, FencedError
from graphrun.events.log import EventLog, EventWriter
from graphrun.events.model import EventKind, to_jsonable
from graphrun.redis.cancel import CancelBus
from graphrun.redis.lease import Leases
from graphrun.registry import config_timeout_s
from graphrun.store.base import Execution, ExecutionStatus, Store

log = logging.getLogger("graphrun.worker")

STREAM_MODES = ["tasks", "custom", "messages", "values"]
_VERSION_TIMEOUTS_KEPT = 4096
# Follow hints kept for executions not claimed yet (a client often attaches before the pick-up):
# about 1.5 MB; at 200 executions/s, the last 80 s.
_FOLLOWED_KEPT = 16_384
# A follow hint ends the start grace this long after it arrived: a client that opens the stream and
# cancels in the same instant sends both requests together, and its cancel lands within this.
_FOLLOW_SETTLE_S = 0.002


@dataclass
class _Active:
    """One claimed execution of this process."""

    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when a client follows the execution (at followed_at): it need not wait out its grace.
    followed: asyncio.Event = field(default_factory=asyncio.Event)
    followed_at: float | None = None
    # Set when the run must stop without deciding the outcome: the lease was lost, or this worker
    # is shutting down and hands the execution over.
    let_go: asyncio.Event = field(default_factory=asyncio.Event)
    lease_lost: bool = False
    started: float = field(default_factory=time.monotonic)

    def follow(self, at: float) -> None:
        if not self.followed.is_set():
            self.followed_at = at
            self.followed.set()


class ExecutionRunner:
    def __init__(
        self,
        store: Store,
        cache: GraphCache,
        events: EventLog,
        cancels: CancelBus,
        leases: Leases,
        requeue: Callable[[str], Awaitable[None]],
        *,
        default_timeout_s: float,
        start_grace_s: float = 0.0,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        recursion_limit: int = 10_000,
    ) -> None:
        self.store = store
        self.cache = cache
        self.events = events
        self.cancels = cancels
        self.leases = leases
        self.requeue = requeue
        self.checkpointer = checkpointer
        # Where each run attaches its gate, if the checkpointer orders and fences writes through one.
        saver: object = checkpointer  # (mypy cannot narrow an Optional generic by a mixin)
        self._gates: Gates | None = saver.gates if isinstance(saver, GatedSaver) else None
        self.default_timeout_s = default_timeout_s
        self.start_grace_s = start_grace_s
        self.recursion_limit = recursion_limit
        self._running: dict[str, _Active] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        # Runs whose outcome was decided (cancelled, timed out) while their code still ran, e.g. a
        # synchronous node in a thread, which nothing can stop: kept until they end by themselves.
        self._abandoned: set[asyncio.Task[Any]] = set()
        # Workflow versions never change, so neither does their own time limit.
        self._version_timeouts: dict[tuple[int, int], float | None] = {}
        # Ids of executions a client follows, not claimed (yet) by this process; oldest first. Most
        # hints are for other processes' executions: they drop out by number.
        self._followed: OrderedDict[str, float] = OrderedDict()
        # Each cached graph with the checkpointer attached (a copy validates the whole graph again:
        # about 0.1 ms a run); dropped with the graph when the graph cache lets it go.
        self._durable: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    @property
    def running(self) -> int:
        return len(self._running)

    def running_ids(self) -> list[str]:
        return list(self._running)

    def cancel(self, execution_id: str) -> bool:
        """Ask a running execution of this process to stop; its outcome is decided at once."""
        active = self._running.get(execution_id)
        if active is None:
            return False
        active.cancel_requested.set()
        return True

    def followed(self, execution_id: str) -> None:
        """A client follows this execution: if it waits out its start grace, it need not."""
        active = self._running.get(execution_id)
        if active is not None:
            active.follow(time.monotonic())
            return
        if self.start_grace_s > 0 and execution_id not in self._followed:
            # Kept by number, not age: under a backlog the pick-up may come long after the hint.
            self._followed[execution_id] = time.monotonic()
            if len(self._followed) > _FOLLOWED_KEPT:
                self._followed.popitem(last=False)

    async def recheck_cancels(self) -> None:
        """Look at the cancel flags of every running execution (a push may have been missed while the
        listener was reconnecting)."""
        for execution_id in list(self._running):
            if await self.cancels.requested(execution_id):
                self.cancel(execution_id)

    async def execute(self, execution_id: str) -> None:
        """The queue's task. Never raises (but for the worker's own shutdown): whatever goes wrong
        with one execution is that execution's outcome, not the worker's."""
        try:
            await self._execute(execution_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("execution %s: internal error", execution_id)

    async def _execute(self, execution_id: str) -> None:
        execution = await self.store.claim_execution(execution_id)
        if execution is None:
            log.info("execution %s was not queued any more (cancelled or taken); skipped", execution_id)
            return
        # Registered before the flag is read: a cancel pushed from now on reaches cancel(), and one
        # pushed earlier has already set the flag (the API sets it before it publishes). The lease
        # and the flag are asked for at once: one round trip's wait instead of two.
        active = self._running[execution_id] = _Active()
        if (followed_at := self._followed.pop(execution_id, None)) is not None:
            active.follow(followed_at)
        self._idle.clear()
        try:
            acquired, flagged = await asyncio.gather(
                self.leases.acquire(execution_id, execution.attempt), self.cancels.requested(execution_id)
            )
        except BaseException:
            # Redis away (or shutdown): not run; the sweeper re-queues it once no lease stands.
            self._forget_running(execution_id)
            raise
        if not acquired:
            self._forget_running(execution_id)
            # Unreachable unless an earlier attempt's lease still stands: let the sweeper decide.
            log.warning("execution %s attempt %s: lease taken; not run", execution_id, execution.attempt)
            return
        if flagged:
            active.cancel_requested.set()
        metrics.RUNNING.inc()
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(execution, active))
        status: ExecutionStatus | str = "abandoned"
        try:
            status = await self._execute_claimed(execution, active)
        finally:
            heartbeat.cancel()
            self._forget_running(execution_id)
            metrics.RUNNING.dec()
            if status != "handed over" and not active.lease_lost:
                try:
                    await self.leases.release(execution_id, execution.attempt)
                except Exception as exc:  # noqa: BLE001 - it expires by itself
                    log.warning("execution %s: lease not released (%s)", execution_id, exc)
        if status != "handed over" and not active.lease_lost and self.checkpointer is not None:
            self._forget_checkpoints(execution_id)
        log.info(
            "execution %s workflow=%s v%s attempt=%s %s in %.1f ms",
            execution_id,
            execution.workflow_id,
            execution.workflow_version,
            execution.attempt,
            status,
            (time.monotonic() - active.started) * 1000,
        )

    def _forget_running(self, execution_id: str) -> None:
        self._running.pop(execution_id, None)
        if not self._running:
            self._idle.set()

    async def _heartbeat(self, execution: Execution, active: _Active) -> None:
        """Renew the lease every third of its time; if it is gone, stop the run (another attempt
        owns the execution now, and none of this one's writes would land)."""
        interval = self.leases.ttl_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.leases.renew(execution.id, execution.attempt)
            except Exception as exc:  # noqa: BLE001 - Redis briefly away is not a lost lease
                log.warning("execution %s: lease renewal failed (%s); retrying", execution.id, exc)
                continue
            if not held:
                log.warning(
                    "execution %s attempt %s: lease lost (this worker was paused or cut off); stopping",
                    execution.id,
                    execution.attempt,
                )
                active.lease_lost = True
                active.let_go.set()
                return

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing runs, at most ``timeout_s``; whether that happened."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def handover_all(self) -> int:
        """Shutting down: every running execution is put back on the queue for another worker,
        which resumes it from its last checkpoint."""
        for active in self._running.values():
            active.let_go.set()
        return len(self._running)

    def _forget_checkpoints(self, execution_id: str) -> None:
        assert self.checkpointer is not None

        async def forget() -> None:
            try:
                await self.checkpointer.adelete_thread(execution_id)  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - only space is lost
                log.info("execution %s: checkpoints not deleted (%s)", execution_id, exc)

        task = asyncio.get_running_loop().create_task(forget())
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    async def _execute_claimed(self, execution: Execution, active: _Active) -> ExecutionStatus | str:
        timeout_s = await self._timeout_of(execution)
        fence = (self.leases.key(execution.id), execution.attempt)
        done_tasks: set[str] = set()
        started_tasks: set[str] = set()
        if execution.attempt > 1:
            writer, started_tasks, done_tasks = await self.events.continue_writer(
                execution.id, live_ttl_s=timeout_s, fence=fence
            )
        else:
            writer = self.events.writer(execution.id, live_ttl_s=timeout_s, fence=fence)
            await self._start_grace(execution, active, timeout_s)
            if active.let_go.is_set() and not active.cancel_requested.is_set():
                # Let go (shutdown, lost lease) before it started: the next attempt starts it afresh.
                return "abandoned" if active.lease_lost else await self._hand_over(execution)
        if active.cancel_requested.is_set():
            # Cancelled while it was being picked up or in its grace: it never ran; its log is just `cancelled`.
            return await self._finish(execution, writer, ExecutionStatus.CANCELLED, EventKind.CANCELLED)
        if execution.attempt > 1 and writer.next_seq > 0:
            writer.emit(EventKind.RESUMED, attempt=execution.attempt)
        else:
            writer.emit(
                EventKind.START,
                workflow_id=execution.workflow_id,
                workflow_version=execution.workflow_version,
                attempt=execution.attempt,
            )
        loop = asyncio.get_running_loop()
        gate = RunGate(writer, fence, fresh=execution.attempt == 1)
        if (gates := self._gates) is not None:
            gates.attach(execution.id, gate)
        inner = loop.create_task(
            self._run(execution, active, writer, gate, started_tasks, done_tasks), name=f"graphrun-run-{execution.id}"
        )
        cancelled = loop.create_task(active.cancel_requested.wait())
        let_go = loop.create_task(active.let_go.wait())
        # The time limit counts from the claim (the API's started_at), start grace and graph build included.
        remaining = max(0.0, timeout_s - (time.monotonic() - active.started))
        try:
            await asyncio.wait((inner, cancelled, let_go), timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            inner.cancel()  # the worker itself is shutting down
            raise
        finally:
            cancelled.cancel()
            let_go.cancel()
        # The outcome is decided here. Whatever the run still emits is dropped from now on, and it
        # is not waited for: an awaiting node is cancelled at once, but a synchronous node goes on
        # in its thread until it returns, and its result is thrown away.
        writer.seal()
        gate.close()
        if gates is not None:
            inner.add_done_callback(lambda _: gates.detach(execution.id))
        if (
            writer.fenced
            or gate.refused
            or (inner.done() and not inner.cancelled() and isinstance(inner.exception(), FencedError))
        ):
            active.lease_lost = True
        if active.let_go.is_set() or active.lease_lost:
            if not inner.done():
                inner.cancel()
                self._abandon(execution.id, inner, writer)
            if active.lease_lost:
                return "abandoned"
            return await self._hand_over(execution)
        if not inner.done():  # (a run that ended before its cancel was seen keeps its own outcome)
            inner.cancel()
            self._abandon(execution.id, inner, writer)
            if active.cancel_requested.is_set():
                return await self._finish(execution, writer, ExecutionStatus.CANCELLED, EventKind.CANCELLED)
            return await self._finish(
                execution, writer, ExecutionStatus.TIMED_OUT, EventKind.TIMEOUT, timeout_s=timeout_s
            )
        if inner.cancelled():
            error = {"type": "CancelledError", "message": "the run was cancelled from inside a node"}
            return await self._finish(execution, writer, ExecutionStatus.FAILED, EventKind.ERROR, error=error)
        exc = inner.exception()
        if isinstance(exc, FactoryError):
            error = {
                "type": "FactoryError",
                "message": f"workflow {execution.workflow_id} v{execution.workflow_version}: {exc}",
            }
            return await self._finish(execution, writer, ExecutionStatus.FAILED, EventKind.ERROR, error=error)
        if exc is not None:  # a node's failure is the execution's, not ours
            error = {"type": type(exc).__name__, "message": str(exc)}
            return await self._finish(execution, writer, ExecutionStatus.FAILED, EventKind.ERROR, error=error)
        return await self._finish(
            execution, writer, ExecutionStatus.SUCCEEDED, EventKind.COMPLETE, output=inner.result()
        )

    async def _start_grace(self, execution: Execution, active: _Active, timeout_s: float) -> None:
        """Hold a first attempt for its start grace after its pick-up, until a client follows it (and
        a few ms more), a cancel arrives or the worker lets it go: a cancel sent the moment submit
        returned lands in the grace, and the execution ends without a node having run. The grace
        counts from the pick-up, not the submit: the API queues an execution only once its 202 has
        gone out, so a busy API that is slow to answer submits (and cancels) does not eat into it."""
        # Queued for twice the grace already (a backlog): a cancel sent right after the submit's 202
        # would have been found at the claim, so holding a worker slot buys nothing. (Twice: the
        # 202 of a very busy API leaves some time after the execution was stored.)
        if time.time() - execution.created_at.timestamp() > 2 * self.start_grace_s:
            return
        # The grace is part of the time limit (counted from the claim); it never takes more than half.
        ends = active.started + min(self.start_grace_s, timeout_s / 2)
        stops = (active.cancel_requested, active.let_go)
        if not active.followed.is_set():
            await _first_of((active.followed, *stops), ends - time.monotonic())
        if active.followed_at is not None and not any(event.is_set() for event in stops):
            await _first_of(stops, min(ends, active.followed_at + _FOLLOW_SETTLE_S) - time.monotonic())

    async def _hand_over(self, execution: Execution) -> str:
        """Back to the queue, lease released, so that another worker resumes it right away."""
        if await self.store.requeue_execution(execution.id, execution.attempt) is not None:
            await self.leases.release(execution.id, execution.attempt)
            await self.requeue(execution.id)
            log.info("execution %s attempt %s handed over", execution.id, execution.attempt)
        return "handed over"

    def _abandon(self, execution_id: str, task: asyncio.Task[Any], writer: EventWriter) -> None:
        since = time.monotonic()
        self._abandoned.add(task)

        def ended(t: asyncio.Task[Any]) -> None:
            self._abandoned.discard(t)
            if not t.cancelled():
                t.exception()  # retrieved: whatever it ended with was already superseded
            log.info(
                "execution %s: its run ended %.1f s after its outcome was decided; %s late event(s) dropped",
                execution_id,
                time.monotonic() - since,
                writer.dropped,
            )

        task.add_done_callback(ended)

    async def _timeout_of(self, execution: Execution) -> float:
        """The submit's ``timeout_s``, else the workflow's own (config ``timeout_s``), else the default."""
        if execution.timeout_s:
            return execution.timeout_s
        key = (execution.workflow_id, execution.workflow_version)
        if key not in self._version_timeouts:
            try:
                config = (await self.store.get_version(*key)).config
                self._version_timeouts[key] = config_timeout_s(config)
            except Exception as exc:  # noqa: BLE001 - a limit we cannot read is the default one
                log.warning("execution %s: workflow time limit unreadable (%s); using the default", execution.id, exc)
                return self.default_timeout_s
            while len(self._version_timeouts) > _VERSION_TIMEOUTS_KEPT:
                del self._version_timeouts[next(iter(self._version_timeouts))]
        return self._version_timeouts[key] or self.default_timeout_s

    async def _finish(
        self,
        execution: Execution,
        writer: EventWriter,
        status: ExecutionStatus,
        kind: EventKind,
        *,
        output: Any = None,
        error: dict[str, Any] | None = None,
        **data: Any,
    ) -> ExecutionStatus:
        # Events before the terminal one go out first; then the stored status; then the terminal
        # event, so whoever sees it can already read the final status.
        try:
            await writer.flush()
        except Exception:
            log.exception("event log of %s incomplete", execution.id)
        # Node outputs may hold LangChain messages and other objects: store what the stream sends.
        output = to_jsonable(output)
        stored = await self._store_outcome(execution, status, output, error)
        if stored is None:
            log.warning("execution %s: final status %s refused (no longer this attempt's)", execution.id, status)
            return status
        if kind is EventKind.COMPLETE:
            data["output"] = output
        elif kind is EventKind.ERROR:
            data["error"] = error
        writer.emit(kind, **data)
        await writer.flush()
        metrics.EXECUTIONS.labels(status.value).inc()
        return status

    async def _store_outcome(
        self, execution: Execution, status: ExecutionStatus, output: Any, error: dict[str, Any] | None
    ) -> Execution | None:
        """The final status, retried while the database is briefly away: an outage alone never
        fails an execution. If it stays away, the lease lapses and a later attempt resumes from the
        last checkpoint and stores it then."""
        delay = 0.1
        deadline = time.monotonic() + 60
        while True:
            try:
                return await self.store.finish_execution(execution.id, execution.attempt, status, output, error)
            except BackendUnavailableError as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("execution %s: storing %s failed (%s); retrying", execution.id, status, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _graph(self, execution: Execution) -> Any:
        while True:
            try:
                return await self.cache.get(execution.workflow_id, execution.workflow_version)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # this execution is being stopped
                # The build this execution waited for was cancelled with the execution that started
                # it (the cache shares one build among all who ask): no reason to fail; build again.
                log.info("execution %s: the graph build it waited for was cancelled; building again", execution.id)

    async def _run(
        self,
        execution: Execution,
        active: _Active,
        writer: EventWriter,
        gate: RunGate,
        started_tasks: set[str],
        done_tasks: set[str],
    ) -> Any:
        graph = await self._graph(execution)
        # The last look before the first node: a cancel sent the moment the client had the id may
        # land while this worker claimed the execution and fetched its graph.
        if execution.attempt == 1 and await self.cancels.requested(execution.id):
            active.cancel_requested.set()  # decides the outcome; this run is then cancelled
            await asyncio.Event().wait()
        config: dict[str, Any] = {
            "recursion_limit": self.recursion_limit,
            "configurable": {"execution_id": execution.id, "thread_id": execution.id},
        }
        run_input: Any = execution.input
        if self.checkpointer is not None:
            # Durable: every step is checkpointed under the execution id, so a later attempt
            # resumes after the last checkpointed step instead of starting over.
            durable = self._durable.get(graph)
            if durable is None:
                durable = self._durable[graph] = graph.copy(update={"checkpointer": self.checkpointer})
            graph = durable
            if execution.attempt > 1 and await self.checkpointer.aget_tuple(config) is not None:  # type: ignore[arg-type]
                run_input = None

        # LangGraph's custom stream chunks do not name their node; while exactly one task runs in a
        # namespace it is that task's (parallel branches leave ``node`` null).
        running: dict[tuple[str, ...], dict[str, str]] = {}
        final: Any = None
        async for ns, mode, chunk in graph.astream(
            run_input,
            config,
            stream_mode=STREAM_MODES,
            subgraphs=True,
            # "async": a step's checkpoint is written while the next step runs. A crash can then
            # cost the last step (it runs again on the next attempt; its log events are not
            # published twice), which nodes must tolerate anyway: see README "Guarantees".
            durability="async" if self.checkpointer is not None else None,
        ):
            scope: dict[str, Any] = {"namespace": list(ns)} if ns else {}
            if mode == "tasks":
                tasks = running.setdefault(ns, {})
                task_id = chunk["id"]
                if "input" in chunk:
                    tasks[task_id] = chunk["name"]
                    gate.task_started(task_id)
                    if task_id not in started_tasks:
                        writer.emit(EventKind.NODE_START, task=task_id, node=chunk["name"], **scope)
                else:
                    tasks.pop(task_id, None)
                    if chunk.get("error") is None and task_id not in done_tasks:
                        writer.emit(
                            EventKind.NODE_END, task=task_id, node=chunk["name"], output=chunk.get("result"), **scope
                        )
                    gate.result_seen(task_id)  # its checkpoint writes may go now (after this event)
            elif mode == "custom":
                tasks = running.get(ns) or {}
                node_task = next(iter(tasks.items())) if len(tasks) == 1 else None
                if node_task is None or node_task[0] not in done_tasks:
                    node = node_task[1] if node_task else None
                    writer.emit(EventKind.CUSTOM, node=node, data=chunk, **scope)
            elif mode == "messages":
                message, meta = chunk
                content = getattr(message, "content", None)
                # Only model output: the human/tool messages a node returns are state, not a stream.
                if content and getattr(message, "type", None) in ("ai", "AIMessageChunk"):
                    writer.emit(EventKind.MESSAGE, node=meta.get("langgraph_node"), content=content, **scope)
            elif mode == "values" and not ns:
                final = chunk
        return final


async def _first_of(events: tuple[asyncio.Event, ...], timeout_s: float) -> None:
    """Wait until one of ``events`` is set, at most ``timeout_s``."""
    if timeout_s <= 0 or any(event.is_set() for event in events):
        return
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
