"""The bodies of the run routes, as ``langgraph_sdk`` sends and reads them (its ``schema.py``).

Fields the server does not know are ignored (the SDKs send fields that servers may not know).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from graphrun.langgraph.serde import run_status
from graphrun.store.base import Execution

StreamModeName = Literal[
    "values", "updates", "messages", "messages-tuple", "custom", "debug", "tasks", "checkpoints", "events"
]
"""The supported modes (``translate.SUPPORTED_MODES``)."""

RunStatusName = Literal["pending", "running", "success", "error", "timeout", "interrupted"]

MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    resume: Any = None
    update: Any = None
    goto: Any = None


class CheckpointIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    checkpoint_id: str | None = None
    checkpoint_ns: str | None = ""


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    assistant_id: str = Field(min_length=1, max_length=200, description="an assistant id or a graph name")
    input: Any = None
    command: CommandIn | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: StreamModeName | list[StreamModeName] | None = None
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    checkpoint: CheckpointIn | None = None
    checkpoint_id: str | None = None
    multitask_strategy: MultitaskStrategy = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] | None = None
    after_seconds: float | None = Field(None, ge=0, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _input_or_command(self) -> RunCreate:
        if self.input is not None and self.command is not None:
            raise ValueError("give input or command, not both")
        return self

    def checkpoint_start(self) -> dict[str, Any] | None:
        """The checkpoint to start from: ``checkpoint``, ``checkpoint_id``, or the config's."""
        if self.checkpoint is not None and self.checkpoint.checkpoint_id:
            return {
                "checkpoint_id": self.checkpoint.checkpoint_id,
                "checkpoint_ns": self.checkpoint.checkpoint_ns or "",
            }
        configurable = (self.config or {}).get("configurable") or {}
        checkpoint_id = self.checkpoint_id or configurable.get("checkpoint_id")
        if checkpoint_id:
            return {"checkpoint_id": str(checkpoint_id), "checkpoint_ns": configurable.get("checkpoint_ns") or ""}
        return None


class CancelMany(BaseModel):
    model_config = ConfigDict(extra="ignore")

    thread_id: str | None = None
    run_ids: list[str] | None = None
    status: Literal["pending", "running", "all"] | None = None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


class RunOut(BaseModel):
    run_id: str
    thread_id: str | None
    assistant_id: str
    created_at: datetime
    updated_at: datetime
    status: RunStatusName
    metadata: dict[str, Any]
    multitask_strategy: str
    kwargs: dict[str, Any]

    @field_serializer("created_at", "updated_at")
    def _times(self, value: datetime) -> str:
        return _iso(value)

    @classmethod
    def of(cls, execution: Execution) -> RunOut:
        options = execution.options
        return cls(
            run_id=execution.id,
            thread_id=execution.thread_id,
            assistant_id=str(options.get("assistant_id", "")),
            created_at=execution.created_at,
            updated_at=execution.finished_at or execution.started_at or execution.created_at,
            status=run_status(execution.status),  # type: ignore[arg-type]
            metadata=execution.metadata,
            multitask_strategy=str(options.get("multitask_strategy", "enqueue")),
            kwargs={
                "input": options.get("input"),
                "command": options.get("command"),
                "config": options.get("config") or {},
                "context": options.get("context") or {},
                "stream_mode": options.get("stream_mode") or ["values"],
                "interrupt_before": options.get("interrupt_before"),
                "interrupt_after": options.get("interrupt_after"),
                "subgraphs": bool(options.get("stream_subgraphs")),
                "resumable": bool(options.get("stream_resumable")),
                "checkpoint": options.get("checkpoint"),
            },
        )
