"""Workflow create, read, update, delete, and submitting executions of a workflow."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import URLPath

from graphrun import metrics
from graphrun.api.openapi import CREATE, DELETE, LIST, READ, WRITE, WorkflowId
from graphrun.api.schemas import (
    ExecutionCreate,
    Submitted,
    WorkflowCreate,
    WorkflowOut,
    WorkflowPage,
    WorkflowUpdate,
)
from graphrun.api.state import State, require_key
from graphrun.registry import config_timeout_s, factory_config
from graphrun.store.base import Execution

log = logging.getLogger("graphrun.api")

router = APIRouter(prefix="/workflows", dependencies=[Depends(require_key)])

Limit = Annotated[int, Query(ge=1, le=200)]


def _validate_config(state: State, graph: str, config: dict[str, Any]) -> None:
    """Unknown graph → 422 naming the registered ones; a graph whose factory declares a pydantic
    ``config_model`` gets its config checked here, field by field, instead of failing at run time."""
    _check_reserved(config)
    config = factory_config(config)
    state.registry.get(graph)
    try:
        model = getattr(state.registry.factory(graph), "config_model", None)
    except Exception:  # noqa: BLE001 - an unloadable factory fails its executions, not the API
        return
    if isinstance(model, type) and issubclass(model, BaseModel):
        try:
            model.model_validate(config)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", "config", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None


def _check_reserved(config: dict[str, Any]) -> None:
    """graphrun's own config keys (``timeout_s``): checked here, never seen by the factory."""
    try:
        config_timeout_s(config)
    except ValueError as exc:
        raise RequestValidationError(
            [{"loc": ("body", "config", "timeout_s"), "msg": str(exc), "type": "value_error"}]
        ) from None


@router.post("", status_code=201, response_model=WorkflowOut, responses=CREATE)
async def create_workflow(body: WorkflowCreate, state: State) -> WorkflowOut:
    _validate_config(state, body.graph, body.config)
    return WorkflowOut.of(await state.store.create_workflow(body.name, body.graph, body.config))


@router.get("", response_model=WorkflowPage, responses=LIST)
async def list_workflows(state: State, limit: Limit = 50, cursor: str | None = None) -> WorkflowPage:
    page = await state.store.list_workflows(limit, cursor)
    return WorkflowPage(items=[WorkflowOut.of(w) for w in page.items], next_cursor=page.next_cursor)


@router.get("/{workflow_id}", response_model=WorkflowOut, responses=READ)
async def get_workflow(workflow_id: WorkflowId, state: State) -> WorkflowOut:
    return WorkflowOut.of(await state.store.get_workflow(workflow_id))


@router.put("/{workflow_id}", response_model=WorkflowOut, responses=WRITE)
async def update_workflow(workflow_id: WorkflowId, body: WorkflowUpdate, state: State) -> WorkflowOut:
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    if not fields:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "give at least one of name, graph, config", "type": "missing"}]
        )
    current = await state.store.get_workflow(workflow_id)
    if "graph" in fields or "config" in fields:
        _validate_config(state, fields.get("graph", current.graph), fields.get("config", current.config))
    updated = await state.store.update_workflow(workflow_id, **fields)
    await state.changes.announce(updated.id, updated.version)
    return WorkflowOut.of(updated)


@router.delete("/{workflow_id}", status_code=204, responses=DELETE)
async def delete_workflow(workflow_id: WorkflowId, state: State) -> Response:
    await state.store.delete_workflow(workflow_id)
    await state.changes.announce(workflow_id, None)
    return Response(status_code=204)


@router.post("/{workflow_id}/executions", status_code=202, response_model=Submitted, responses=WRITE)
async def submit(
    workflow_id: WorkflowId, body: ExecutionCreate, state: State, request: Request, background: BackgroundTasks
) -> Submitted:
    execution = await state.store.create_execution(workflow_id, body.input, body.timeout_s)
    return submitted(state, request, background, execution)


def submitted(state: State, request: Request, background: BackgroundTasks, execution: Execution) -> Submitted:
    """The 202 of a stored execution (a submit's, a resume's), which is enqueued once it is sent."""
    # Queued only once the 202 is on its way: a cancel sent the moment the client has the id then
    # lands before any worker can claim the execution, or within the start grace its worker holds
    # it for (worker/grace.py), so it never starts. The execution is stored already, so a lost
    # enqueue delays it, never loses it.
    background.add_task(_enqueue, state, execution.id)
    metrics.SUBMITTED.inc()
    url = _events_url(request, execution.id)
    if state.auth.enabled:
        url += f"?token={state.auth.token_for(execution.id)}"
    return Submitted(
        execution_id=execution.id,
        status=execution.status.value,
        workflow_id=execution.workflow_id,
        workflow_version=execution.workflow_version,
        events_url=url,
    )


_ID = "{execution_id}"


def _events_url(request: Request, execution_id: str) -> str:
    """``request.url_for("execution_events", …)``, with the route's path looked up once per app:
    the lookup walks every route and was about 5% of an API process's CPU under load."""
    state = request.app.state
    template = getattr(state, "events_path", None)
    if template is None:
        template = state.events_path = request.app.url_path_for("execution_events", execution_id=_ID)
    return str(URLPath(template.replace(_ID, execution_id)).make_absolute_url(request.base_url))


async def _enqueue(state: State, execution_id: str) -> None:
    try:
        await state.queue.push(execution_id)
    except Exception as exc:  # noqa: BLE001
        # Durable submit: the sweeper queues a queued execution that is not on the queue (after
        # GRAPHRUN_REQUEUE_AFTER_S).
        log.warning("execution %s stored but not queued (%s); the sweeper will queue it", execution_id, exc)
