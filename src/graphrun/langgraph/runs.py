"""The run routes of LangGraph's server API (API.md §7): create, stream, wait, list, get, delete,
join, join stream and cancel, on a thread or stateless.

A run IS an execution (design-15): created in the store with its options, put on the one queue,
run by the workers, streamed from its one event log (``stream.py``), cancelled through the cancel
bus. A rejected request stores nothing: the assistant, the thread and its business are checked
before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from graphrun.api.openapi import answers
from graphrun.api.sse import SSEResponse
from graphrun.api.state import AppState, State, require_key
from graphrun.errors import ConflictError, NotFoundError
from graphrun.langgraph import submit
from graphrun.langgraph.runbody import CancelMany, RunCreate, RunOut, RunStatusName
from graphrun.langgraph.serde import execution_statuses
from graphrun.langgraph.stream import parse_last_event_id, run_frames, sse_response, wait_ended
from graphrun.store.base import Execution, ExecutionStatus

router = APIRouter(dependencies=[Depends(require_key)], tags=["runs"])

UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_UUID_FORM = {"format": "uuid"}


def _uuid_or_404(kind: str, value: str) -> str:
    if not UUID.fullmatch(value):
        raise NotFoundError(f"{kind} {value[:80]!r} not found")
    return value


async def _thread_id(
    thread_id: Annotated[str, Path(description="the thread's id", json_schema_extra=_UUID_FORM)],
) -> str:
    return _uuid_or_404("thread", thread_id)


async def _run_id(run_id: Annotated[str, Path(description="the run's id", json_schema_extra=_UUID_FORM)]) -> str:
    return _uuid_or_404("run", run_id)


ThreadId = Annotated[str, Depends(_thread_id)]
RunId = Annotated[str, Depends(_run_id)]

CREATED = answers(400, 404, 409, 413, 503)
READ = answers(404, 503)
RUN_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the run's events as LangGraph's server streams them (Server-Sent Events)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}
VALUES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": 'the run\'s final values, or `{"__error__": {"error", "message"}}`',
        "content": {"application/json": {"schema": {}}},
    },
}


# -- helpers ----------------------------------------------------------------------------------


async def _thread_run(state: AppState, thread_id: str, run_id: str) -> Execution:
    execution = await state.store.get_execution(run_id)
    if execution.thread_id != thread_id:
        raise NotFoundError(f"run {run_id} not found on thread {thread_id}")
    return execution


def _paths(execution: Execution) -> tuple[str, str]:
    """The run's path, and its join stream's."""
    base = f"/threads/{execution.thread_id}/runs/{execution.id}" if execution.thread_id else f"/runs/{execution.id}"
    return base, f"{base}/stream"


def _stream_response(state: AppState, execution: Execution, *, after_id: str | None = None) -> SSEResponse:
    path, stream_path = _paths(execution)
    cancel_on_close = execution.options.get("on_disconnect") == "cancel"

    def closed(ended: bool) -> None:
        if not ended and cancel_on_close:
            submit.spawn(submit.cancel_run(state, execution))

    frames = run_frames(state, execution, parse_last_event_id(after_id))
    return sse_response(state, frames, {"Location": stream_path, "Content-Location": path}, closed)


async def _wait_response(state: AppState, execution: Execution) -> JSONResponse:
    path, _ = _paths(execution)
    ended = await wait_ended(state, execution)
    return JSONResponse(submit.output_of(ended), headers={"Content-Location": path, "Location": f"{path}/join"})


# -- runs on a thread -------------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs", response_model=RunOut, responses=CREATED)
async def create_run(
    thread_id: ThreadId, body: RunCreate, state: State, response: Response, background: BackgroundTasks
) -> RunOut:
    execution = await submit.create_run(state, body, thread_id)
    submit.schedule(state, execution, background)
    response.headers["Content-Location"] = _paths(execution)[0]
    return RunOut.of(execution)


@router.post("/threads/{thread_id}/runs/stream", response_class=SSEResponse, responses={**RUN_STREAM, **CREATED})
async def stream_run(thread_id: ThreadId, body: RunCreate, state: State) -> SSEResponse:
    execution = await submit.create_run(state, body, thread_id)
    await submit.start_now(state, execution)
    return _stream_response(state, execution)


@router.post("/threads/{thread_id}/runs/wait", response_class=JSONResponse, responses={**VALUES, **CREATED})
async def wait_run(thread_id: ThreadId, body: RunCreate, state: State) -> JSONResponse:
    execution = await submit.create_run(state, body, thread_id)
    await submit.start_now(state, execution)
    return await _wait_response(state, execution)


@router.get("/threads/{thread_id}/runs", response_model=list[RunOut], responses=READ)
async def list_runs(
    thread_id: ThreadId,
    state: State,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    status: RunStatusName | None = None,
) -> list[RunOut]:
    await state.store.get_thread(thread_id)  # 404
    statuses = execution_statuses(status) if status else [None]
    found: list[Execution] = []
    for execution_status in statuses:
        cursor = None
        while len(found) < offset + limit:
            page = await state.store.list_executions(
                min(offset + limit, 1000), cursor, status=execution_status, thread_id=thread_id
            )
            found += page.items
            if (cursor := page.next_cursor) is None:
                break
    found.sort(key=lambda e: e.created_at, reverse=True)
    return [RunOut.of(e) for e in found[offset : offset + limit]]


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=RunOut, responses=READ)
async def get_run(thread_id: ThreadId, run_id: RunId, state: State) -> RunOut:
    return RunOut.of(await _thread_run(state, thread_id, run_id))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204, responses=answers(404, 409, 503))
async def delete_run(thread_id: ThreadId, run_id: RunId, state: State) -> Response:
    execution = await _thread_run(state, thread_id, run_id)
    if not execution.status.finished:
        raise ConflictError(f"run {run_id} has not ended: cancel it first", execution.status.value)
    await state.store.delete_execution(run_id)
    return Response(status_code=204)


@router.get("/threads/{thread_id}/runs/{run_id}/join", response_class=JSONResponse, responses={**VALUES, **READ})
async def join_run(thread_id: ThreadId, run_id: RunId, state: State) -> JSONResponse:
    return await _wait_response(state, await _thread_run(state, thread_id, run_id))


@router.get(
    "/threads/{thread_id}/runs/{run_id}/stream",
    response_class=SSEResponse,
    responses={**RUN_STREAM, **answers(400, 404, 503)},
)
async def join_run_stream(
    thread_id: ThreadId,
    run_id: RunId,
    state: State,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    cancel_on_disconnect: bool = False,
) -> SSEResponse:
    parse_last_event_id(last_event_id)  # 400 before anything else
    execution = await _thread_run(state, thread_id, run_id)
    return _joined(state, execution, last_event_id, cancel_on_disconnect)


def _joined(state: AppState, execution: Execution, last_event_id: str | None, cancel: bool) -> SSEResponse:
    if cancel:
        execution = _with_options(execution, on_disconnect="cancel")
    elif execution.options.get("on_disconnect") == "cancel":
        execution = _with_options(execution, on_disconnect="continue")  # only its creator's stream cancels it
    return _stream_response(state, execution, after_id=last_event_id)


def _with_options(execution: Execution, **options: Any) -> Execution:
    return replace(execution, options={**execution.options, **options})


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    status_code=202,
    response_model=RunOut,
    responses={200: {"model": RunOut, "description": "with wait: the run, ended"}, **answers(404, 413, 503)},
)
async def cancel_run(
    thread_id: ThreadId,
    run_id: RunId,
    state: State,
    response: Response,
    wait: bool = False,
    action: Annotated[str, Query(pattern="^(interrupt|rollback)$")] = "interrupt",
) -> RunOut:
    execution = await submit.cancel_run(state, await _thread_run(state, thread_id, run_id))
    if action == "rollback":
        if not wait:
            submit.spawn(submit.rollback_run(state, execution))
            return RunOut.of(execution)
        ended = await wait_ended(state, execution)
        await submit.rollback_run(state, ended)
        response.status_code = 200
        return RunOut.of(ended)
    if wait:
        execution = await wait_ended(state, execution)
        response.status_code = 200
    return RunOut.of(execution)


# -- stateless runs ---------------------------------------------------------------------------


@router.post("/runs", response_model=RunOut, responses=CREATED)
async def create_stateless_run(
    body: RunCreate, state: State, response: Response, background: BackgroundTasks
) -> RunOut:
    execution = await submit.create_run(state, body, None)
    submit.schedule(state, execution, background)
    response.headers["Content-Location"] = _paths(execution)[0]
    return RunOut.of(execution)


@router.post("/runs/stream", response_class=SSEResponse, responses={**RUN_STREAM, **CREATED})
async def stream_stateless_run(body: RunCreate, state: State) -> SSEResponse:
    execution = await submit.create_run(state, body, None)
    await submit.start_now(state, execution)
    return _stream_response(state, execution)


@router.post("/runs/wait", response_class=JSONResponse, responses={**VALUES, **CREATED})
async def wait_stateless_run(body: RunCreate, state: State) -> JSONResponse:
    execution = await submit.create_run(state, body, None)
    await submit.start_now(state, execution)
    return await _wait_response(state, execution)


@router.get("/runs/{run_id}/stream", response_class=SSEResponse, responses={**RUN_STREAM, **answers(400, 404, 503)})
async def join_stateless_run_stream(
    run_id: RunId,
    state: State,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    cancel_on_disconnect: bool = False,
) -> SSEResponse:
    """Where a stateless stream's ``Location`` points, so that a client reconnects by itself."""
    parse_last_event_id(last_event_id)
    execution = await state.store.get_execution(run_id)
    if execution.options.get("protocol") != "langgraph":
        raise NotFoundError(f"run {run_id} not found")
    return _joined(state, execution, last_event_id, cancel_on_disconnect)


@router.post("/runs/cancel", status_code=204, responses=answers(400, 404, 413, 503))
async def cancel_runs(
    body: CancelMany,
    state: State,
    action: Annotated[str, Query(pattern="^(interrupt|rollback)$")] = "interrupt",
) -> Response:
    if body.run_ids:
        targets = [
            await state.store.get_execution(_uuid_or_404("run", r)) for r in body.run_ids
        ]  # 404 before any cancel
        if body.thread_id is not None and any(t.thread_id != body.thread_id for t in targets):
            raise NotFoundError(f"not every run is on thread {body.thread_id}")
    elif body.thread_id is not None or body.status is not None:
        if body.thread_id is not None:
            await state.store.get_thread(_uuid_or_404("thread", body.thread_id))
        statuses = {
            "pending": [ExecutionStatus.QUEUED],
            "running": [ExecutionStatus.RUNNING],
        }.get(body.status or "all", [ExecutionStatus.RUNNING, ExecutionStatus.QUEUED])
        targets = [
            e
            for e in await submit.unfinished(state, body.thread_id, statuses)
            if e.options.get("protocol") == "langgraph"
        ]
    else:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "give run_ids, thread_id or status", "type": "missing"}]
        )
    for execution in targets:
        if not execution.status.finished:
            cancelled = await submit.cancel_run(state, execution)
            if action == "rollback":
                submit.spawn(submit.rollback_run(state, cancelled))
    return Response(status_code=204)
