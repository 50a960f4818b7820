"""The store's interface and records. Every backend passes ``tests/store/test_store_contract.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        return self not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class Workflow:
    id: int
    name: str
    graph: str
    config: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class WorkflowVersion:
    """One immutable version of a workflow: what an execution pinned to it runs."""

    workflow_id: int
    version: int
    graph: str
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Execution:
    id: str
    workflow_id: int
    workflow_version: int
    status: ExecutionStatus
    input: dict[str, Any]
    output: Any
    error: dict[str, Any] | None
    attempt: int
    timeout_s: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None


class Store(Protocol):
    """Workflows, their immutable versions, and executions.

    Invariants every backend keeps:
    - ``update_workflow`` is one atomic increment: N concurrent updates give N distinct versions.
    - Updating or deleting a workflow gives every workflow that embeds it (``record_dependencies``),
      transitively, a new version in the same transaction.
    - A version, once written, never changes, so an execution always runs what it was pinned to.
    - Status changes are compare-and-set: a finished execution never changes again.
    """

    async def close(self) -> None: ...
    async def ping(self) -> None: ...

    async def create_workflow(self, name: str, graph: str, config: dict[str, Any]) -> Workflow: ...
    async def get_workflow(self, workflow_id: int) -> Workflow: ...
    async def find_workflow(self, name: str) -> Workflow: ...
    async def list_workflows(self, limit: int, cursor: str | None) -> Page[Workflow]: ...
    async def update_workflow(
        self,
        workflow_id: int,
        *,
        name: str | None = None,
        graph: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> Workflow: ...
    async def delete_workflow(self, workflow_id: int) -> None: ...
    async def get_version(self, workflow_id: int, version: int) -> WorkflowVersion: ...
    async def record_dependencies(self, workflow_id: int, children: dict[int, int]) -> bool: ...
    async def popular_workflows(self, limit: int, since: datetime) -> list[Workflow]: ...

    async def create_execution(self, workflow_id: int, input: dict[str, Any], timeout_s: float | None) -> Execution: ...
    async def delete_execution(self, execution_id: str) -> None: ...
    async def get_execution(self, execution_id: str) -> Execution: ...
    async def list_executions(
        self,
        limit: int,
        cursor: str | None,
        workflow_id: int | None = None,
        status: ExecutionStatus | None = None,
    ) -> Page[Execution]: ...
    async def claim_execution(self, execution_id: str) -> Execution | None:
        """queued → running, attempt + 1; None if it was not queued (e.g. cancelled first)."""
        ...

    async def finish_execution(
        self,
        execution_id: str,
        attempt: int,
        status: ExecutionStatus,
        output: Any = None,
        error: dict[str, Any] | None = None,
    ) -> Execution | None:
        """running → a final status, only for the given attempt; None if that lost a race."""
        ...

    async def requeue_execution(self, execution_id: str, attempt: int) -> Execution | None:
        """running (this attempt) → queued, for a take-over; None if that attempt no longer runs."""
        ...

    async def executions_in(
        self, status: ExecutionStatus, limit: int, created_before: datetime | None = None
    ) -> list[Execution]: ...

    async def cancel_queued(self, execution_id: str) -> Execution | None:
        """queued → cancelled; None if it was not queued any more."""
        ...
