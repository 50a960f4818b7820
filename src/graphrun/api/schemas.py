"""Request and response bodies of API.md §2."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from graphrun.store.base import Execution, Workflow


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


class WorkflowCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    graph: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)


class WorkflowUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    graph: str | None = Field(None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None


class ExecutionCreate(BaseModel):
    input: dict[str, Any]
    timeout_s: float | None = Field(None, gt=0, le=7 * 24 * 3600)


class ExecutionResume(BaseModel):
    """What an interrupted execution's ``interrupt()`` returns when it goes on: any JSON but null
    (LangGraph takes a null resume for none, and the node would only ask again)."""

    resume: Any

    @field_validator("resume")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("resume must not be null")
        return value


class WorkflowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    graph: str
    config: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime

    @field_serializer("created_at", "updated_at")
    def _times(self, value: datetime) -> str | None:
        return _iso(value)

    @classmethod
    def of(cls, wf: Workflow) -> WorkflowOut:
        return cls.model_validate(wf)


class ExecutionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    workflow_id: int
    workflow_version: int
    status: str
    # The LangGraph thread of a run made through the LangGraph API; null for native executions.
    thread_id: str | None = None
    input: dict[str, Any]
    output: Any
    error: dict[str, Any] | None
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @field_serializer("created_at", "started_at", "finished_at")
    def _times(self, value: datetime | None) -> str | None:
        return _iso(value)

    @classmethod
    def of(cls, ex: Execution) -> ExecutionOut:
        return cls.model_validate(ex)


class WorkflowPage(BaseModel):
    items: list[WorkflowOut]
    next_cursor: str | None


class ExecutionPage(BaseModel):
    items: list[ExecutionOut]
    next_cursor: str | None


class Submitted(BaseModel):
    execution_id: str
    status: str
    workflow_id: int
    workflow_version: int
    events_url: str


class GraphOut(BaseModel):
    name: str
    description: str | None


class ErrorOut(BaseModel):
    """Every error but 422 (API.md §2): FastAPI's ``{"detail": ...}`` with a message."""

    detail: str


class ConflictOut(ErrorOut):
    """409: the conflicting state travels beside the message, so a client need not parse it."""

    status: str | None = None


class Readiness(BaseModel):
    status: str
    redis: str
    database: str
