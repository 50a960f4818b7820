"""LangGraph threads: a conversation's record. Its state (checkpoints) is in the thread saver; the
routes that read and write it are in :mod:`graphrun.langgraph.state`."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from graphrun.api.openapi import CREATE, DELETE, READ, WRITE, answers
from graphrun.api.state import State, require_key
from graphrun.checkpoint.threads import copy_thread_checkpoints
from graphrun.errors import NotFoundError
from graphrun.langgraph.assistants import iso
from graphrun.langgraph.serde import to_jsonable
from graphrun.store.base import ExecutionStatus, Thread

router = APIRouter(prefix="/threads", tags=["langgraph: threads"], dependencies=[Depends(require_key)])

SEARCH = answers(400, 413, 503)
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]


class ThreadOut(BaseModel):
    thread_id: str
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    metadata: dict[str, Any]
    status: ThreadStatus
    config: dict[str, Any]
    values: Any = None
    interrupts: dict[str, list[Any]]
    error: Any = None

    @field_serializer("created_at", "updated_at", "state_updated_at")
    def _times(self, value: datetime) -> str | None:
        return iso(value)

    @classmethod
    def of(cls, t: Thread) -> ThreadOut:
        return cls(
            thread_id=t.thread_id,
            created_at=t.created_at,
            updated_at=t.updated_at,
            state_updated_at=t.state_updated_at or t.updated_at,
            metadata=t.metadata,
            status=t.status,  # type: ignore[arg-type]
            config=t.config,
            values=t.values,
            interrupts=t.interrupts,
            error=t.error,
        )


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the SDKs send fields a server may not know


class ThreadCreate(_Body):
    thread_id: uuid.UUID | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadPatch(_Body):
    metadata: dict[str, Any] | None = None


class ThreadCount(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: ThreadStatus | None = None


class ThreadSearch(ThreadCount):
    ids: list[uuid.UUID] | None = Field(default=None, max_length=1000)
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=2**31 - 1)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None


@router.post("", response_model=ThreadOut, responses={**CREATE, **answers(409)})
async def create_thread(body: ThreadCreate, state: State) -> ThreadOut:
    thread_id = str(body.thread_id) if body.thread_id else None
    metadata = to_jsonable(body.metadata or {})
    return ThreadOut.of(await state.store.create_thread(thread_id, metadata, if_exists=body.if_exists))


@router.post("/search", response_model=list[ThreadOut], responses=SEARCH)
async def search_threads(body: ThreadSearch, state: State) -> list[ThreadOut]:
    found = await state.store.search_threads(
        ids=[str(i) for i in body.ids] if body.ids is not None else None,
        metadata=body.metadata,
        values=body.values,
        status=body.status,
        limit=body.limit,
        offset=body.offset,
        sort_by=body.sort_by or "created_at",
        sort_order=body.sort_order or "desc",
    )
    return [ThreadOut.of(t) for t in found]


@router.post("/count", response_model=int, responses=SEARCH)
async def count_threads(body: ThreadCount, state: State) -> int:
    return await state.store.count_threads(metadata=body.metadata, values=body.values, status=body.status)


@router.get("/{thread_id}", response_model=ThreadOut, responses=READ)
async def get_thread(thread_id: uuid.UUID, state: State) -> ThreadOut:
    return ThreadOut.of(await state.store.get_thread(str(thread_id)))


@router.patch("/{thread_id}", response_model=ThreadOut, responses=WRITE)
async def patch_thread(thread_id: uuid.UUID, body: ThreadPatch, state: State) -> ThreadOut:
    return ThreadOut.of(await state.store.update_thread(str(thread_id), body.metadata or {}))


@router.delete("/{thread_id}", status_code=204, responses=DELETE)
async def delete_thread(thread_id: uuid.UUID, state: State) -> Response:
    """The thread, its runs (running ones are cancelled first) and its checkpoints."""
    tid = str(thread_id)
    await state.store.get_thread(tid)
    cursor: str | None = None
    while True:
        page = await state.store.list_executions(200, cursor, thread_id=tid)
        for run in page.items:
            if run.status.finished:
                continue
            await state.cancels.request(run.id)
            if run.status is ExecutionStatus.QUEUED:
                await state.store.cancel_queued(run.id)
        if (cursor := page.next_cursor) is None:
            break
    with contextlib.suppress(NotFoundError):  # deleted meanwhile: its checkpoints go below all the same
        await state.store.delete_thread(tid)
    await state.thread_saver.adelete_thread(tid)
    return Response(status_code=204)


@router.post("/{thread_id}/copy", response_model=ThreadOut, responses=WRITE)
async def copy_thread(thread_id: uuid.UUID, state: State) -> ThreadOut:
    copy = await state.store.copy_thread(str(thread_id))
    await copy_thread_checkpoints(state.thread_saver, str(thread_id), copy.thread_id)
    return ThreadOut.of(copy)
