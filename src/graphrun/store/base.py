"""The store's interface and records. Every backend passes ``tests/store/test_store_contract.py``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, Protocol, TypeVar

T = TypeVar("T")

# Fixed forever: a graph's default assistant keeps its id across restarts, processes and databases.
ASSISTANT_NAMESPACE = uuid.UUID("6f1d3f8e-3c4b-5a7e-9d2c-6b8e0f4a1c27")


def default_assistant_id(graph_name: str) -> str:
    """The id of the default assistant of a registered graph."""
    return str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_name))


IfExists = Literal["raise", "do_nothing"]
SortOrder = Literal["asc", "desc"]


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    # Stopped at a LangGraph ``interrupt()``: no longer running, but ``resume_execution`` continues
    # it (once) as a new execution on its checkpoints.
    INTERRUPTED = "interrupted"

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
    assistant_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkflowVersion:
    """One immutable version of a workflow: what an execution pinned to it runs."""

    workflow_id: int
    version: int
    graph: str
    config: dict[str, Any]
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


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
    thread_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    # An interrupted execution that was resumed: the id of the execution that continues it.
    resumed_by: str | None = None


# The options of a native execution that resumes an interrupted one: the answer it resumes with, and
# the checkpointer thread it continues (the first execution's id, so that a chain of resumes goes on
# in one thread).
RESUME_OPTION = "resume"
RESUME_FROM_OPTION = "resume_from"


def checkpoint_thread_of(execution: Execution) -> str:
    """The checkpointer thread of a native execution: its own id, or its chain's first id."""
    return str(execution.options.get(RESUME_FROM_OPTION) or execution.id)


@dataclass(frozen=True, slots=True)
class Thread:
    """A LangGraph thread. ``status`` is idle, interrupted or error as stored, and busy when read while
    one of its executions is queued or running."""

    thread_id: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    status: str
    config: dict[str, Any]
    values: Any | None
    interrupts: dict[str, list[dict[str, Any]]]
    error: Any | None
    state_updated_at: datetime | None = None


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

    async def create_workflow(
        self,
        name: str,
        graph: str,
        config: dict[str, Any],
        *,
        assistant_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        description: str | None = None,
        context: dict[str, Any] | None = None,
        if_exists: IfExists = "raise",
    ) -> Workflow:
        """A new workflow (version 1); with ``assistant_id`` taken: ConflictError, or the existing
        one with ``if_exists="do_nothing"``."""
        ...

    async def get_workflow_by_assistant(self, assistant_id: str) -> Workflow: ...
    async def ensure_default_assistants(self, graphs: list[str]) -> None:
        """Each graph's default assistant exists (created, or undeleted); idempotent."""
        ...

    async def search_workflows(
        self,
        *,
        graph: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: SortOrder = "desc",
    ) -> list[Workflow]: ...
    async def count_workflows(
        self, *, graph: str | None = None, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> int: ...
    async def list_versions(
        self, workflow_id: int, *, metadata: dict[str, Any] | None = None, limit: int = 10, offset: int = 0
    ) -> list[WorkflowVersion]:
        """Newest first."""
        ...

    async def set_latest_version(self, workflow_id: int, version: int) -> Workflow: ...
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
        metadata: dict[str, Any] | None = None,
        description: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> Workflow: ...
    async def delete_workflow(self, workflow_id: int) -> None: ...
    async def get_version(self, workflow_id: int, version: int) -> WorkflowVersion: ...
    async def record_dependencies(self, workflow_id: int, children: dict[int, int]) -> bool: ...
    async def popular_workflows(self, limit: int, since: datetime) -> list[Workflow]: ...

    async def create_execution(
        self,
        workflow_id: int,
        input: dict[str, Any],
        timeout_s: float | None,
        *,
        execution_id: str | None = None,
        thread_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        only_if_idle: bool = False,
        thread_metadata: dict[str, Any] | None = None,
    ) -> Execution: ...
    async def delete_execution(self, execution_id: str) -> None: ...
    async def get_execution(self, execution_id: str) -> Execution: ...
    async def list_executions(
        self,
        limit: int,
        cursor: str | None,
        workflow_id: int | None = None,
        status: ExecutionStatus | None = None,
        thread_id: str | None = None,
    ) -> Page[Execution]: ...
    async def claim_execution(self, execution_id: str) -> Execution | None:
        """queued → running, attempt + 1; None if it was not queued (e.g. cancelled first), or if it
        is on a thread where another execution runs or an earlier one is still queued."""
        ...

    async def blocked_on_thread(self, execution_id: str) -> bool:
        """Queued, and waiting for its thread's turn (what a None from ``claim_execution`` meant)."""
        ...

    async def next_queued_on_thread(self, thread_id: str) -> str | None:
        """The thread's oldest queued execution: the one to enqueue when a run of it ends."""
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

    async def resume_execution(self, execution_id: str, resume: Any) -> Execution:
        """One atomic step: an interrupted native execution not resumed yet is marked resumed by a new
        queued execution, pinned to its workflow version, that continues its checkpoints with
        ``resume``; the new one is returned. NotFoundError for an unknown id; ConflictError (with
        the status) when it is not interrupted or was resumed already, and then nothing is stored."""
        ...

    async def cancel_interrupted(self, execution_id: str) -> Execution | None:
        """interrupted (not resumed) → cancelled; None if it was not that any more."""
        ...

    async def create_thread(
        self, thread_id: str | None = None, metadata: dict[str, Any] | None = None, if_exists: IfExists = "raise"
    ) -> Thread: ...
    async def get_thread(self, thread_id: str) -> Thread: ...
    async def update_thread(self, thread_id: str, metadata: dict[str, Any]) -> Thread:
        """Merge ``metadata`` into the thread's."""
        ...

    async def delete_thread(self, thread_id: str) -> None:
        """The thread and its executions' rows."""
        ...

    async def search_threads(
        self,
        *,
        ids: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        status: str | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: SortOrder = "desc",
    ) -> list[Thread]: ...
    async def count_threads(
        self, *, metadata: dict[str, Any] | None = None, values: dict[str, Any] | None = None, status: str | None = None
    ) -> int: ...
    async def copy_thread(self, thread_id: str) -> Thread:
        """A new thread with this one's metadata, values and status (the caller copies checkpoints)."""
        ...

    async def set_thread_state(
        self, thread_id: str, *, status: str, values: Any, interrupts: dict[str, list[dict[str, Any]]], error: Any
    ) -> None: ...
