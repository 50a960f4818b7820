"""Running one execution: claim it, hold its lease, build (or fetch) its graph, stream it, decide and
record the outcome.

The parts live beside it: the lease (lease.py), the execution's phase and outcome (state.py), the
start grace (grace.py), the graph's stream (stream.py, translate.py), the time limit (limits.py)
and the recording of the outcome (finish.py), each with what must stay true of it.

What must stay true here:
- only the worker whose claim succeeded (queued → running) runs an execution, only while it holds
  the execution's lease, and only if no cancel was requested by the time it read the flag after
  its claim;
- a taken-over execution resumes from its last LangGraph checkpoint, and a node whose end is
  already in the log is not published again;
- every log it writes ends with exactly one terminal event, and starts with ``start`` if the run
  began (one cancelled at pick-up has just ``cancelled``; a resumed one goes on with ``resumed``);
- the outcome is decided once, by whichever comes first: the run ends, a request to stop arrives
  (a cancel, a hand-over, a lost lease), the time limit passes. A run that is still going then is
  not waited for (a synchronous node cannot be stopped), and nothing it emits or returns afterwards
  reaches the log or the store;
- an exception in a factory or a node fails that execution only, never the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from graphrun import metrics
from graphrun.cache import GraphCache
from graphrun.checkpoint.gate import GatedSaver, Gates, RunGate
from graphrun.errors import FencedError
from graphrun.events.log import EventLog, EventWriter
from graphrun.events.model import EventKind
from graphrun.langgraph.translate import LangGraphTranslator
from graphrun.redis.cancel import CancelBus
from graphrun.redis.lease import Leases
from graphrun.store.base import RESUME_FROM_OPTION, Execution, ExecutionStatus, Store, checkpoint_thread_of
from graphrun.worker.active import ActiveRuns
from graphrun.worker.finish import Before, finish, finish_ended
from graphrun.worker.grace import start_grace
from graphrun.worker.lease import HeldLease
from graphrun.worker.lgoptions import PROTOCOL
from graphrun.worker.lgrun import LangGraphRuns, translator_for
from graphrun.worker.limits import TimeLimits
from graphrun.worker.state import ActiveRun, Outcome, Phase
from graphrun.worker.stream import GraphStreamer
from graphrun.worker.translate import StreamTranslator

log = logging.getLogger("graphrun.worker")


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
        thread_saver: BaseCheckpointSaver[Any] | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.cancels = cancels
        self.leases = leases
        self.requeue = requeue
        self.start_grace_s = start_grace_s
        self.limits = TimeLimits(store, default_timeout_s)
        self.graphs = GraphStreamer(cache, checkpointer, recursion_limit=recursion_limit)
        # Where each run attaches its gate, if the checkpointer orders and fences writes through one.
        saver: object = checkpointer  # (mypy cannot narrow an Optional generic by a mixin)
        self._gates: Gates | None = saver.gates if isinstance(saver, GatedSaver) else None
        # LangGraph-protocol runs (design-15); those on a thread keep their checkpoints in its saver.
        self.lg = LangGraphRuns(store, checkpointer, thread_saver, recursion_limit=recursion_limit)
        threads: object = thread_saver
        self._thread_gates: Gates | None = threads.gates if isinstance(threads, GatedSaver) else None
        self.active = ActiveRuns(keep_hints=start_grace_s > 0)
        # Runs whose outcome was decided (cancelled, timed out) while their code still ran, e.g. a
        # synchronous node in a thread, which nothing can stop: kept until they end by themselves.
        self._abandoned: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> int:
        return len(self.active)

    def running_ids(self) -> list[str]:
        return self.active.ids()

    def cancel(self, execution_id: str) -> bool:
        """Ask a running execution of this process to stop; its outcome is decided at once."""
        return self.active.cancel(execution_id)

    def followed(self, execution_id: str) -> None:
        """A client follows this execution: if it waits out its start grace, it need not."""
        self.active.followed(execution_id)

    async def recheck_cancels(self) -> None:
        """Look at the cancel flags of every running execution (a push may have been missed while the
        listener was reconnecting)."""
        for execution_id in self.active.ids():
            if await self.cancels.requested(execution_id):
                self.cancel(execution_id)

    def handover_all(self) -> int:
        """Shutting down: every running execution is put back on the queue for another worker,
        which resumes it from its last checkpoint."""
        return self.active.hand_over_all()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing runs, at most ``timeout_s``; whether that happened."""
        return await self.active.wait_idle(timeout_s)

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
            if await self.store.blocked_on_thread(execution_id):
                # Left queued: the run before it on its thread enqueues it when it ends.
                log.info("execution %s waits for its thread's turn", execution_id)
            else:
                log.info("execution %s was not queued any more (cancelled or taken); skipped", execution_id)
            return
        # Registered before the flag is read: a cancel pushed from now on reaches cancel(), and one
        # pushed earlier has already set the flag (the API sets it before it publishes). The lease
        # and the flag are asked for at once: one round trip's wait instead of two.
        active = self.active.add(execution_id)
        lease = HeldLease(self.leases, execution_id, execution.attempt)
        try:
            acquired, flagged = await asyncio.gather(lease.acquire(), self.cancels.requested(execution_id))
        except BaseException:
            # Redis away (or shutdown): not run; the sweeper re-queues it once no lease stands.
            self.active.remove(execution_id)
            raise
        if not acquired:
            self.active.remove(execution_id)
            # Unreachable unless an earlier attempt's lease still stands: let the sweeper decide.
            log.warning("execution %s attempt %s: lease taken; not run", execution_id, execution.attempt)
            return
        if flagged:
            active.cancel()
        metrics.RUNNING.inc()
        lease.keep(on_lost=active.lose_lease)
        outcome: Outcome | None = None
        try:
            outcome = await self._run_claimed(execution, active, lease)
        finally:
            lease.stop()
            self.active.remove(execution_id)
            metrics.RUNNING.dec()
            if outcome is not Outcome.HANDED_OVER and not active.lease_lost:
                await lease.release()
        if outcome is not Outcome.HANDED_OVER and not active.lease_lost:
            if execution.thread_id is None:
                # A thread's checkpoints are its state, and an interrupted execution's are what its
                # resume goes on from: kept (the latter until their TTL, docs/guarantees.md).
                if outcome is not Outcome.INTERRUPTED:
                    self.graphs.forget(checkpoint_thread_of(execution))
            else:
                await self._next_on_thread(execution.thread_id)
        log.info(
            "execution %s workflow=%s v%s attempt=%s %s in %.1f ms",
            execution_id,
            execution.workflow_id,
            execution.workflow_version,
            execution.attempt,
            outcome,
            (time.monotonic() - active.started) * 1000,
        )

    async def _run_claimed(self, execution: Execution, active: ActiveRun, lease: HeldLease) -> Outcome:
        timeout_s = await self.limits.of(execution)
        done_tasks: set[str] = set()
        started_tasks: set[str] = set()
        if execution.attempt > 1:
            writer, started_tasks, done_tasks = await self.events.continue_writer(
                execution.id, live_ttl_s=timeout_s, fence=lease.fence
            )
        else:
            writer = self.events.writer(execution.id, live_ttl_s=timeout_s, fence=lease.fence)
            await start_grace(active, execution.created_at, self.start_grace_s, timeout_s)
        # Asked to stop before it started: the next attempt starts it afresh, or it ends cancelled.
        if active.stopping.is_set():
            return await self._stop_before_start(execution, active, writer)
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
        # A thread already has checkpoints: only a fresh execution's lookups can be skipped.
        fresh = execution.attempt == 1 and execution.thread_id is None and RESUME_FROM_OPTION not in execution.options
        gate = RunGate(writer, lease.fence, fresh=fresh)
        gates, gate_key = self._gates, checkpoint_thread_of(execution)
        if execution.thread_id is not None:
            gates, gate_key = self._thread_gates, execution.thread_id
        if gates is not None:
            gates.attach(gate_key, gate)
        lg = execution.options.get("protocol") == PROTOCOL
        translator: StreamTranslator | LangGraphTranslator = (
            translator_for(execution, done_tasks) if lg else StreamTranslator(started=started_tasks, done=done_tasks)
        )
        before = self._thread_recorder(execution) if lg and execution.thread_id is not None else None
        inner = loop.create_task(
            self._run(execution, active, writer, gate, translator), name=f"graphrun-run-{execution.id}"
        )
        stopping = loop.create_task(active.stopping.wait())
        # The time limit counts from the claim (the API's started_at), start grace and graph build included.
        remaining = max(0.0, timeout_s - (time.monotonic() - active.started))
        try:
            await asyncio.wait((inner, stopping), timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            inner.cancel()  # the worker itself is shutting down
            raise
        finally:
            stopping.cancel()
        # The outcome is decided here. Whatever the run still emits is dropped from now on, and it
        # is not waited for: an awaiting node is cancelled at once, but a synchronous node goes on
        # in its thread until it returns, and its result is thrown away.
        writer.seal()
        gate.close()
        if gates is not None:
            inner.add_done_callback(lambda _: gates.detach(gate_key, gate))
        if (
            writer.fenced
            or gate.refused
            or (inner.done() and not inner.cancelled() and isinstance(inner.exception(), FencedError))
        ):
            active.lose_lease()
        if active.letting_go:
            if not inner.done():
                inner.cancel()
                self._abandon(execution.id, inner, writer)
            return Outcome.ABANDONED if active.lease_lost else await self._hand_over(execution)
        if not inner.done():  # (a run that ended before its cancel was seen keeps its own outcome)
            inner.cancel()
            self._abandon(execution.id, inner, writer)
            if active.cancelling:
                return await finish(self.store, writer, execution, ExecutionStatus.CANCELLED, before=before)
            return await finish(
                self.store, writer, execution, ExecutionStatus.TIMED_OUT, timeout_s=timeout_s, before=before
            )
        interrupts = translator.interrupts if isinstance(translator, StreamTranslator) else None
        return await finish_ended(self.store, writer, execution, inner, before, interrupts=interrupts)

    def _thread_recorder(self, execution: Execution) -> Before:
        async def record(status: ExecutionStatus, error: dict[str, Any] | None) -> None:
            await self.lg.record_thread(execution, await self.graphs.graph(execution), status, error)

        return record

    async def _next_on_thread(self, thread_id: str) -> None:
        """Enqueue the run that waits behind the one that ended (the sweeper's re-queue of long-queued
        executions is the backstop if this is lost)."""
        try:
            if (following := await self.store.next_queued_on_thread(thread_id)) is not None:
                await self.requeue(following)
        except Exception as exc:  # noqa: BLE001
            log.warning("thread %s: its next run not enqueued (%s); the sweeper will", thread_id, exc)

    async def _stop_before_start(self, execution: Execution, active: ActiveRun, writer: EventWriter) -> Outcome:
        if active.phase is Phase.CANCELLING:
            # Cancelled while it was being picked up or in its grace: it never ran; its log is just `cancelled`.
            return await finish(self.store, writer, execution, ExecutionStatus.CANCELLED)
        if active.phase is Phase.HANDING_OVER:
            return await self._hand_over(execution)
        return Outcome.ABANDONED

    async def _hand_over(self, execution: Execution) -> Outcome:
        """Back to the queue, lease released, so that another worker resumes it right away."""
        if await self.store.requeue_execution(execution.id, execution.attempt) is not None:
            await self.leases.release(execution.id, execution.attempt)
            await self.requeue(execution.id)
            log.info("execution %s attempt %s handed over", execution.id, execution.attempt)
        return Outcome.HANDED_OVER

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

    async def _run(
        self,
        execution: Execution,
        active: ActiveRun,
        writer: EventWriter,
        gate: RunGate,
        translator: StreamTranslator | LangGraphTranslator,
    ) -> Any:
        graph = await self.graphs.graph(execution)
        # The last look before the first node: a cancel sent the moment the client had the id may
        # land while this worker claimed the execution and fetched its graph.
        if execution.attempt == 1 and await self.cancels.requested(execution.id):
            active.cancel()  # decides the outcome; this run is then cancelled
            await asyncio.Event().wait()
        if isinstance(translator, StreamTranslator):
            return await self.graphs.stream(execution, graph, writer, gate, translator)
        return await self.lg.stream(execution, graph, writer, gate, translator)
