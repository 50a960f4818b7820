"""Reading executions, and cancelling them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from graphrun.api.schemas import ExecutionOut, ExecutionPage
from graphrun.api.state import State, require_key
from graphrun.errors import ConflictError
from graphrun.events.model import EventKind
from graphrun.store.base import ExecutionStatus

router = APIRouter(prefix="/executions", dependencies=[Depends(require_key)])


@router.get("", response_model=ExecutionPage)
async def list_executions(
    state: State,
    workflow_id: int | None = None,
    status: ExecutionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> ExecutionPage:
    page = await state.store.list_executions(limit, cursor, workflow_id=workflow_id, status=status)
    return ExecutionPage(items=[ExecutionOut.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/{execution_id}", response_model=ExecutionOut)
async def get_execution(execution_id: str, state: State) -> ExecutionOut:
    return ExecutionOut.of(await state.store.get_execution(execution_id))


@router.post("/{execution_id}/cancel", status_code=202, response_model=ExecutionOut)
async def cancel_execution(execution_id: str, state: State) -> ExecutionOut:
    execution = await state.store.get_execution(execution_id)
    if execution.status is ExecutionStatus.CANCELLED:
        return ExecutionOut.of(execution)  # cancelling twice is harmless
    if execution.status.finished:
        raise ConflictError(f"execution {execution_id} already finished: {execution.status}", execution.status)
    if execution.status is ExecutionStatus.QUEUED:
        # Flag first: a worker that claims the execution from now on reads the flag after its claim
        # and never starts the graph; one that claimed it already gets the push below.
        await state.cancels.request(execution_id, push=False)
        cancelled = await state.store.cancel_queued(execution_id)
        if cancelled is not None:
            # It never ran, so its log is just the terminal event; no worker will touch it.
            writer = state.events.writer(execution_id, live_ttl_s=0)
            writer.emit(EventKind.CANCELLED)
            await writer.flush()
            return ExecutionOut.of(cancelled)
    # Running (or picked up while we looked): push to whichever worker holds it.
    await state.cancels.request(execution_id)
    return ExecutionOut.of(await state.store.get_execution(execution_id))
