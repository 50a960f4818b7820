"""Reading executions, cancelling them, and resuming an interrupted one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request

from graphrun import metrics
from graphrun.api.openapi import CANCEL, LIST, READ, RESUME, ExecutionId, WorkflowIdFilter, workflow_id_in_range
from graphrun.api.schemas import ExecutionOut, ExecutionPage, ExecutionResume, Submitted
from graphrun.api.state import State, require_key
from graphrun.api.workflows import submitted
from graphrun.errors import ConflictError, NotFoundError
from graphrun.events.terminal import terminal_event
from graphrun.store.base import ExecutionStatus

router = APIRouter(prefix="/executions", dependencies=[Depends(require_key)])


@router.get("", response_model=ExecutionPage, responses=LIST)
async def list_executions(
    state: State,
    workflow_id: WorkflowIdFilter = None,
    status: ExecutionStatus | None = None,
    thread_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> ExecutionPage:
    if workflow_id is not None and not workflow_id_in_range(workflow_id):
        # Names no workflow, so has no executions; the database cannot bind it (beyond 64 bits), so
        # 0, which names none either, stands in: the page is empty and the cursor still checked.
        workflow_id = 0
    page = await state.store.list_executions(limit, cursor, workflow_id=workflow_id, status=status, thread_id=thread_id)
    return ExecutionPage(items=[ExecutionOut.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/{execution_id}", response_model=ExecutionOut, responses=READ)
async def get_execution(execution_id: ExecutionId, state: State) -> ExecutionOut:
    return ExecutionOut.of(await state.store.get_execution(execution_id))


@router.post("/{execution_id}/cancel", status_code=202, response_model=ExecutionOut, responses=CANCEL)
async def cancel_execution(execution_id: ExecutionId, state: State) -> ExecutionOut:
    # Flag and push go out before we even look, so the worker running it stops while we read.
    # And a worker that claims the execution after this reads the flag right after its claim and
    # never starts the graph: an execution we find queued below never runs a node, whether our
    # compare-and-set or a worker's claim comes first.
    await state.cancels.request(execution_id)
    try:
        execution = await state.store.get_execution(execution_id)
    except NotFoundError:
        await state.cancels.withdraw(execution_id)  # a rejected request leaves nothing behind
        raise
    if execution.status.finished:
        await state.cancels.withdraw(execution_id)
        if execution.status is ExecutionStatus.INTERRUPTED:
            # Nothing runs it: the compare-and-set alone decides, against a concurrent resume. Its
            # log keeps its `interrupt` event; it can no longer be resumed.
            if (cancelled := await state.store.cancel_interrupted(execution_id)) is not None:
                metrics.EXECUTIONS.labels(ExecutionStatus.CANCELLED.value).inc()
                return ExecutionOut.of(cancelled)
            execution = await state.store.get_execution(execution_id)
            if execution.resumed_by is not None:
                raise ConflictError(
                    f"execution {execution_id} was resumed (by {execution.resumed_by}): cancel that one",
                    execution.status,
                )
        if execution.status is ExecutionStatus.CANCELLED:
            return ExecutionOut.of(execution)  # cancelling twice is harmless
        raise ConflictError(f"execution {execution_id} already finished: {execution.status}", execution.status)
    if execution.status is ExecutionStatus.QUEUED:
        cancelled = await state.store.cancel_queued(execution_id)
        if cancelled is not None:
            # It never ran, so its log is just the terminal event; no worker will touch it.
            writer = state.events.writer(execution_id, live_ttl_s=0)
            event = terminal_event(execution_id, ExecutionStatus.CANCELLED)
            writer.emit(event.kind, **event.data)
            await writer.flush()
            metrics.EXECUTIONS.labels(ExecutionStatus.CANCELLED.value).inc()
            return ExecutionOut.of(cancelled)
        execution = await state.store.get_execution(execution_id)  # claimed meanwhile: it stops at once
    return ExecutionOut.of(execution)


@router.post("/{execution_id}/resume", status_code=202, response_model=Submitted, responses=RESUME)
async def resume_execution(
    execution_id: ExecutionId, body: ExecutionResume, state: State, request: Request, background: BackgroundTasks
) -> Submitted:
    """A new execution, pinned to the same workflow version, that continues an interrupted one's state
    with ``Command(resume=...)``. Exactly one resume of an execution wins (a compare-and-set)."""
    execution = await state.store.resume_execution(execution_id, body.resume)
    return submitted(state, request, background, execution)
