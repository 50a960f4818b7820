"""Creating, starting and cancelling runs: what the run routes share (``runs.py``).

What must stay true: a rejected request stores nothing (the assistant, the thread and the
thread's business are checked before anything is written); a run goes on the one queue only once
it is stored; a run that waits behind another on its thread is enqueued when that one ends (by its
worker, or here when it is cancelled before it started).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from typing import Any, cast

from fastapi import BackgroundTasks
from fastapi.exceptions import RequestValidationError
from langchain_core.runnables import RunnableConfig

from graphrun import metrics
from graphrun.api.executions import cancel_execution
from graphrun.api.state import AppState
from graphrun.checkpoint.threads import delete_checkpoints
from graphrun.errors import ConflictError, NotFoundError
from graphrun.langgraph.assistants import resolve_assistant
from graphrun.langgraph.runbody import MultitaskStrategy, RunCreate
from graphrun.langgraph.state import record_thread_state, thread_graph
from graphrun.langgraph.stream import wait_ended
from graphrun.langgraph.translate import normalise_modes
from graphrun.store.base import Execution, ExecutionStatus, Thread

log = logging.getLogger("graphrun.api")

# Tasks started here that nobody awaits (delayed enqueues, cancels on disconnect): kept so that
# they are not collected.
background_tasks: set[asyncio.Task[Any]] = set()


def spawn(coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    background_tasks.add(task)
    task.add_done_callback(background_tasks.discard)


async def enqueue_run(state: AppState, execution_id: str) -> None:
    try:
        await state.queue.push(execution_id)
    except Exception as exc:  # noqa: BLE001 - stored: the sweeper queues it
        log.warning("run %s stored but not queued (%s); the sweeper will queue it", execution_id, exc)


def enqueue_later(state: AppState, execution_id: str, delay_s: float) -> None:
    """Best effort within this process (a restart loses it; the sweeper then queues the run)."""

    async def later() -> None:
        await asyncio.sleep(delay_s)
        await enqueue_run(state, execution_id)

    spawn(later())


async def cancel_run(state: AppState, execution: Execution) -> Execution:
    """Cancel one run (the native cancel: flag, push, or queued → cancelled); a run that has ended
    is left as it is."""
    with contextlib.suppress(ConflictError):
        await cancel_execution(execution.id, state)
    # Runs queued behind it on its thread wait for a run's end to be enqueued: this was one.
    if (
        execution.thread_id is not None
        and execution.status is ExecutionStatus.QUEUED
        and (following := await state.store.next_queued_on_thread(execution.thread_id)) is not None
    ):
        await enqueue_run(state, following)
    return await state.store.get_execution(execution.id)


async def unfinished(state: AppState, thread_id: str | None, statuses: list[ExecutionStatus]) -> list[Execution]:
    out: list[Execution] = []
    for status in statuses:
        cursor = None
        while True:
            page = await state.store.list_executions(200, cursor, status=status, thread_id=thread_id)
            out += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
    return out


def output_of(execution: Execution) -> Any:
    """What ``/wait`` and ``/join`` answer: the final values, or the failure."""
    if execution.status is ExecutionStatus.FAILED:
        error = execution.error or {}
        return {"__error__": {"error": error.get("type", "Error"), "message": error.get("message", "")}}
    if execution.status is ExecutionStatus.TIMED_OUT:
        return {"__error__": {"error": "TimeoutError", "message": "the run timed out"}}
    return execution.output


async def create_run(state: AppState, body: RunCreate, thread_id: str | None) -> Execution:
    """Check everything, then store the run (and its thread, with ``if_not_exists=create``)."""
    workflow = await resolve_assistant(state, body.assistant_id)
    if thread_id is None and body.command is not None:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "command"),
                    "msg": "a command needs a thread: use /threads/{id}/runs",
                    "type": "value_error",
                }
            ]
        )
    create_thread = False
    if thread_id is not None:
        try:
            thread = await state.store.get_thread(thread_id)
        except NotFoundError:
            if body.if_not_exists != "create":
                raise
            create_thread = True
        else:
            if thread.status == "busy":
                await multitask(state, thread_id, body.multitask_strategy)
            elif body.command is not None and body.command.resume is not None:
                check_resume(thread, body.command.resume)
    if create_thread and thread_id is not None:
        await state.store.create_thread(thread_id, if_exists="do_nothing")
    config = dict(body.config or {})
    assistant_config = workflow.config.get("configurable") if isinstance(workflow.config, dict) else None
    if assistant_config or config.get("configurable"):
        config["configurable"] = {**(assistant_config or {}), **(config.get("configurable") or {})}
    options = {
        "protocol": "langgraph",
        "assistant_id": workflow.assistant_id,
        "graph_id": workflow.graph,
        "input": body.input,
        "command": body.command.model_dump() if body.command is not None else None,
        "config": config,
        "context": {**(workflow.context or {}), **(body.context or {})},
        "stream_mode": normalise_modes(body.stream_mode),
        "stream_subgraphs": body.stream_subgraphs,
        "interrupt_before": body.interrupt_before,
        "interrupt_after": body.interrupt_after,
        "checkpoint": body.checkpoint_start() if thread_id is not None else None,
        "multitask_strategy": body.multitask_strategy,
        "on_disconnect": body.on_disconnect or "continue",
        "after_seconds": body.after_seconds,
        "stream_resumable": body.stream_resumable,
    }
    metadata = {**(body.metadata or {}), "graph_id": workflow.graph, "assistant_id": workflow.assistant_id}
    execution = await state.store.create_execution(
        workflow.id,
        body.input if isinstance(body.input, dict) else {},
        None,
        execution_id=str(uuid.uuid4()),
        thread_id=thread_id,
        metadata=metadata,
        options=options,
        # The check above is only the fast answer: this one, under the thread's lock, is the rule.
        only_if_idle=thread_id is not None and body.multitask_strategy == "reject",
        thread_metadata={"graph_id": workflow.graph, "assistant_id": workflow.assistant_id},
    )
    metrics.SUBMITTED.inc()
    return execution


_INTERRUPT_ID = re.compile(r"[0-9a-f]{32}")


def check_resume(thread: Thread, resume: Any) -> None:
    """A resume must answer something pending (checked when the thread is not busy: a run ahead of
    it may still stop at an interrupt). A map whose keys are all interrupt ids is a resume by id, as
    LangGraph reads it: each id must be pending."""
    if thread.status != "interrupted":
        raise ConflictError(f"thread {thread.thread_id} has no pending interrupt to resume", thread.status)
    if isinstance(resume, dict) and resume and all(_INTERRUPT_ID.fullmatch(str(k)) for k in resume):
        pending = {i.get("id") for task in thread.interrupts.values() for i in task}
        unknown = sorted(set(resume) - pending)
        if unknown:
            raise ConflictError(
                f"no pending interrupt of thread {thread.thread_id} has id {', '.join(unknown)};"
                f" pending: {', '.join(sorted(str(p) for p in pending)) or 'none'}",
                thread.status,
            )


async def multitask(state: AppState, thread_id: str, strategy: MultitaskStrategy) -> None:
    """A run arrives while its thread is busy."""
    if strategy == "reject":
        raise ConflictError(f"thread {thread_id} is busy: a run is pending or running", "busy")
    if strategy in ("interrupt", "rollback"):
        # The runs before it are cancelled; it runs once they have ended (the thread's order). A
        # rollback also undoes them before the new run is stored, so that it starts from there.
        for execution in await unfinished(state, thread_id, [ExecutionStatus.RUNNING, ExecutionStatus.QUEUED]):
            cancelled = await cancel_run(state, execution)
            if strategy == "rollback":
                await rollback_run(state, cancelled)
    # enqueue: it waits its turn behind them.


async def rollback_run(state: AppState, execution: Execution) -> None:
    """Once the cancelled run has ended: the run's checkpoints are deleted, so the thread's head is
    again the checkpoint it started from, and the run is deleted, as LangGraph's server does."""
    ended = await wait_ended(state, execution)
    thread_id = ended.thread_id
    if thread_id is not None:
        oldest = None
        own: list[str] = []
        config = cast(RunnableConfig, {"configurable": {"thread_id": thread_id}})  # every namespace
        async for item in state.thread_saver.alist(config, filter={"run_id": ended.id}):
            own.append(item.config["configurable"]["checkpoint_id"])
            if not item.config["configurable"].get("checkpoint_ns"):
                oldest = item  # newest first: the last one is the run's first checkpoint
        graph = await thread_graph(state, await state.store.get_thread(thread_id))
        if own and graph is not None:
            if oldest is not None and oldest.parent_config is None:  # no state before this run
                await state.thread_saver.adelete_thread(thread_id)
            else:
                await delete_checkpoints(state.thread_saver, thread_id, own)
            await record_thread_state(state, thread_id, graph)
    await state.store.delete_execution(ended.id)


def schedule(state: AppState, execution: Execution, background: BackgroundTasks | None = None) -> None:
    delay = execution.options.get("after_seconds")
    if delay:
        enqueue_later(state, execution.id, float(delay))
    elif background is not None:
        # After the answer is on its way, as the native submit: a cancel sent the moment the client
        # has the id lands before any worker claims the run.
        background.add_task(enqueue_run, state, execution.id)


async def start_now(state: AppState, execution: Execution) -> None:
    if execution.options.get("after_seconds"):
        schedule(state, execution)
        return
    await enqueue_run(state, execution.id)
    await state.cancels.followed(execution.id)  # a client follows it: no start grace needed
