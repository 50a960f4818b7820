"""A thread's state and history, read and written with its graph and the thread saver.

The graph is the thread's assistant's (``metadata.assistant_id``, stamped by its runs), or else its
``metadata.graph_id``'s default assistant's; a thread with neither has never run and has an empty
state, as in LangGraph's server.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from langgraph.errors import EmptyChannelError, InvalidUpdateError
from langgraph.types import StateSnapshot
from pydantic import BaseModel, ConfigDict, Field

from graphrun.api.openapi import READ, WRITE, answers
from graphrun.api.state import AppState, State, require_key
from graphrun.errors import ConflictError, NotFoundError
from graphrun.langgraph.assistants import resolve_assistant
from graphrun.langgraph.serde import to_jsonable
from graphrun.store.base import Thread

router = APIRouter(prefix="/threads", tags=["langgraph: thread state"], dependencies=[Depends(require_key)])

Subgraphs = Annotated[bool, Query(description="include the state of subgraphs")]
CHECKPOINT_KEYS = ("checkpoint_ns", "checkpoint_id", "checkpoint_map")

# Per thread saver, each cached graph with that saver attached (a copy validates the graph again).
_durable: weakref.WeakKeyDictionary[Any, weakref.WeakKeyDictionary[Any, Any]] = weakref.WeakKeyDictionary()


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the SDKs send fields a server may not know


class StateAt(_Body):
    checkpoint: dict[str, Any]
    subgraphs: bool = False


class StateUpdate(_Body):
    values: dict[str, Any] | list[Any] | None = None
    as_node: str | None = Field(default=None, max_length=200)
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = Field(default=None, max_length=200)


class HistoryQuery(_Body):
    limit: int = Field(default=10, ge=1, le=1000)
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None


def thread_config(thread_id: str, checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    for key in CHECKPOINT_KEYS:
        if (checkpoint or {}).get(key) is not None:
            configurable[key] = checkpoint[key]  # type: ignore[index]
    return {"configurable": configurable}


async def thread_graph(state: AppState, thread: Thread) -> Any | None:
    """The thread's graph with the thread saver attached; None for a thread that never ran."""
    graph_id = thread.metadata.get("graph_id")
    if not isinstance(graph_id, str) or not graph_id:
        return None
    wf = None
    assistant_id = thread.metadata.get("assistant_id")
    if isinstance(assistant_id, str):
        try:
            wf = await state.store.get_workflow_by_assistant(assistant_id)
        except NotFoundError:
            wf = None
    if wf is None or wf.graph != graph_id:
        wf = await resolve_assistant(state, graph_id)
    graph = await state.graphs.get(wf.id, wf.version)
    copies = _durable.setdefault(state.thread_saver, weakref.WeakKeyDictionary())
    durable = copies.get(graph)
    if durable is None:
        durable = copies[graph] = graph.copy(update={"checkpointer": state.thread_saver})
    return durable


def _checkpoint(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return None
    c = config.get("configurable", {})
    return {
        "checkpoint_id": c.get("checkpoint_id"),
        "thread_id": c.get("thread_id"),
        "checkpoint_ns": c.get("checkpoint_ns", ""),
    }


def _task(task: Any) -> dict[str, Any]:
    nested = task.state
    return {
        "id": task.id,
        "name": task.name,
        "path": to_jsonable(list(task.path)),
        "error": f"{type(task.error).__name__}({task.error})" if task.error is not None else None,
        "interrupts": to_jsonable(list(task.interrupts)),
        "checkpoint": nested.get("configurable") if isinstance(nested, dict) else None,
        "state": state_out(nested) if isinstance(nested, StateSnapshot) else None,
        "result": to_jsonable(task.result) if task.result is not None else None,
    }


def state_out(snapshot: StateSnapshot) -> dict[str, Any]:
    """A ``StateSnapshot`` as LangGraph's server answers it (SDK ``ThreadState``)."""
    saved = snapshot.created_at is not None
    checkpoint = _checkpoint(snapshot.config) if saved else None
    parent = _checkpoint(snapshot.parent_config)
    return {
        "values": to_jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": [_task(t) for t in snapshot.tasks],
        "metadata": to_jsonable(snapshot.metadata),
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": to_jsonable(list(snapshot.interrupts)),
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }


def empty_state(asked: dict[str, Any] | None = None) -> dict[str, Any]:
    """The state of a thread that has no checkpoint (there, or at all)."""
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "metadata": None,
        "created_at": None,
        "checkpoint": asked,
        "parent_checkpoint": None,
        "interrupts": [],
        "checkpoint_id": asked.get("checkpoint_id") if asked else None,
        "parent_checkpoint_id": None,
    }


async def _read_state(state: AppState, thread_id: str, checkpoint: dict[str, Any] | None, subgraphs: bool) -> Any:
    thread = await state.store.get_thread(thread_id)
    config = thread_config(thread_id, checkpoint)
    asked = _checkpoint(config) if checkpoint and checkpoint.get("checkpoint_id") else None
    graph = await thread_graph(state, thread)
    if graph is None:
        return empty_state(asked)
    snapshot = await graph.aget_state(config, subgraphs=subgraphs)
    return state_out(snapshot) if snapshot.created_at is not None else empty_state(asked)


STATE = answers(404, 503)


@router.get("/{thread_id}/state", response_model=dict[str, Any], responses=STATE)
async def get_state(thread_id: uuid.UUID, state: State, subgraphs: Subgraphs = False) -> Any:
    return await _read_state(state, str(thread_id), None, subgraphs)


@router.get("/{thread_id}/state/{checkpoint_id}", response_model=dict[str, Any], responses=STATE)
async def get_state_at(thread_id: uuid.UUID, checkpoint_id: str, state: State, subgraphs: Subgraphs = False) -> Any:
    return await _read_state(state, str(thread_id), {"checkpoint_id": checkpoint_id}, subgraphs)


@router.post("/{thread_id}/state/checkpoint", response_model=dict[str, Any], responses=READ | answers(400, 413))
async def post_state_at(thread_id: uuid.UUID, body: StateAt, state: State) -> Any:
    return await _read_state(state, str(thread_id), body.checkpoint, body.subgraphs)


@router.post("/{thread_id}/state", response_model=dict[str, Any], responses=WRITE | answers(409))
async def update_state(thread_id: uuid.UUID, body: StateUpdate, state: State) -> dict[str, Any]:
    tid = str(thread_id)
    thread = await state.store.get_thread(tid)
    if thread.status == "busy":
        raise ConflictError(f"thread {tid} is busy: a run is queued or running on it", "busy")
    graph = await thread_graph(state, thread)
    if graph is None:
        raise HTTPException(
            400, f"thread {tid} has no graph_id in its metadata: no run was made on it; run it first, or set one"
        )
    checkpoint = dict(body.checkpoint or {})
    if body.checkpoint_id:
        checkpoint["checkpoint_id"] = body.checkpoint_id
    config = thread_config(tid, checkpoint) | {"metadata": {"graph_id": thread.metadata["graph_id"]}}
    try:
        written = await graph.aupdate_state(config, body.values, as_node=body.as_node)
    except (InvalidUpdateError, EmptyChannelError, ValueError, KeyError) as exc:  # an unknown or ambiguous node…
        raise HTTPException(422, f"cannot update the state: {exc}") from None
    await record_thread_state(state, tid, graph)
    saved = _checkpoint(written)
    return {"checkpoint": saved, "configurable": saved, "checkpoint_id": saved["checkpoint_id"] if saved else None}


async def record_thread_state(state: AppState, thread_id: str, graph: Any) -> None:
    """Copy the thread's current state into its record (what search by values and get answer)."""
    snapshot = await graph.aget_state(thread_config(thread_id))
    interrupts = {t.id: to_jsonable(list(t.interrupts)) for t in snapshot.tasks if t.interrupts}
    status = "interrupted" if snapshot.next else "idle"
    values = to_jsonable(snapshot.values)
    await state.store.set_thread_state(thread_id, status=status, values=values, interrupts=interrupts, error=None)


@router.post("/{thread_id}/history", response_model=list[dict[str, Any]], responses=READ | answers(400, 413))
async def get_history(thread_id: uuid.UUID, body: HistoryQuery, state: State) -> list[dict[str, Any]]:
    tid = str(thread_id)
    thread = await state.store.get_thread(tid)
    graph = await thread_graph(state, thread)
    if graph is None:
        return []
    before = body.before
    if isinstance(before, dict):
        before = before.get("checkpoint_id") or before.get("configurable", {}).get("checkpoint_id")
    before_config = {"configurable": {"checkpoint_id": before}} if isinstance(before, str) and before else None
    config = thread_config(tid, body.checkpoint)
    return [
        state_out(s)
        async for s in graph.aget_state_history(config, filter=body.metadata, before=before_config, limit=body.limit)
    ]
