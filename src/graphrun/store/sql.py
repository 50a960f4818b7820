"""The store on SQLAlchemy 2 Core: SQLite through the stdlib driver in threads, PostgreSQL through
psycopg 3 (async). Each call is one operation of ``graphrun.store.queries`` in one transaction,
run by a ``graphrun.store.runner``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from graphrun.errors import BackendUnavailableError
from graphrun.store import queries as q
from graphrun.store.base import (
    Execution,
    ExecutionStatus,
    IfExists,
    Page,
    SortOrder,
    Thread,
    Workflow,
    WorkflowVersion,
)
from graphrun.store.runner import AsyncRunner, Runner, SQLiteRunner, is_sqlite, make_async_engine

P = ParamSpec("P")
T = TypeVar("T")


class SQLStore:
    """The SQL implementation of :class:`graphrun.store.base.Store`."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def _read(self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kw: P.kwargs) -> T:
        return await self._runner.run(lambda conn: fn(conn, *args, **kw), write=False)

    async def _write(self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kw: P.kwargs) -> T:
        return await self._runner.run(lambda conn: fn(conn, *args, **kw), write=True)

    # Point operations on every run's path (one row, by key): see ``Runner.run``'s ``quick``.

    async def _get(self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kw: P.kwargs) -> T:
        return await self._runner.run(lambda conn: fn(conn, *args, **kw), write=False, quick=True)

    async def _set(self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kw: P.kwargs) -> T:
        return await self._runner.run(lambda conn: fn(conn, *args, **kw), write=True, quick=True)

    async def close(self) -> None:
        await self._runner.close()

    async def ping(self) -> None:
        await self._read(q.ping)

    # -- workflows ------------------------------------------------------------------------------

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
        return await self._write(
            q.create_workflow,
            name,
            graph,
            config,
            assistant_id=assistant_id,
            metadata=metadata,
            description=description,
            context=context,
            if_exists=if_exists,
        )

    async def get_workflow(self, workflow_id: int) -> Workflow:
        return await self._read(q.get_workflow, workflow_id)

    async def find_workflow(self, name: str) -> Workflow:
        """The newest live workflow with this name."""
        return await self._read(q.find_workflow, name)

    async def list_workflows(self, limit: int, cursor: str | None) -> Page[Workflow]:
        return await self._read(q.list_workflows, limit, cursor)

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
    ) -> Workflow:
        """A new version; ``metadata`` is merged into the current metadata."""
        return await self._write(q.update_workflow, workflow_id, name, graph, config, metadata, description, context)

    async def record_dependencies(self, workflow_id: int, children: dict[int, int]) -> bool:
        """Record that ``workflow_id``'s graph embeds these children at these versions.

        False if a child changed since it was loaded: the graph just built is already stale and
        must not be cached. Reading the children's versions under a row lock orders this against a
        concurrent update of a child, which either sees the recorded edge (and bumps the parent) or
        commits first (and this sees its new version).
        """
        if not children:
            return True
        return await self._write(q.record_dependencies, workflow_id, children)

    async def popular_workflows(self, limit: int, since: datetime) -> list[Workflow]:
        """Live workflows with the most executions since ``since`` (for prewarming)."""
        return await self._read(q.popular_workflows, limit, since)

    async def delete_workflow(self, workflow_id: int) -> None:
        await self._write(q.delete_workflow, workflow_id)

    async def get_version(self, workflow_id: int, version: int) -> WorkflowVersion:
        return await self._get(q.get_version, workflow_id, version)

    # -- workflows as assistants ----------------------------------------------------------------

    async def get_workflow_by_assistant(self, assistant_id: str) -> Workflow:
        return await self._get(q.get_workflow_by_assistant, assistant_id)

    async def ensure_default_assistants(self, graphs: list[str]) -> None:
        await self._write(q.ensure_default_assistants, graphs)

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
    ) -> list[Workflow]:
        return await self._read(
            q.search_workflows,
            graph=graph,
            name=name,
            metadata=metadata,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            sort_order=sort_order,
        )

    async def count_workflows(
        self, *, graph: str | None = None, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> int:
        return await self._read(q.count_workflows, graph=graph, name=name, metadata=metadata)

    async def list_versions(
        self, workflow_id: int, *, metadata: dict[str, Any] | None = None, limit: int = 10, offset: int = 0
    ) -> list[WorkflowVersion]:
        return await self._read(q.list_versions, workflow_id, metadata=metadata, limit=limit, offset=offset)

    async def set_latest_version(self, workflow_id: int, version: int) -> Workflow:
        return await self._write(q.set_latest_version, workflow_id, version)

    # -- executions -----------------------------------------------------------------------------

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
    ) -> Execution:
        return await self._set(
            q.create_execution,
            workflow_id,
            input,
            timeout_s,
            execution_id=execution_id,
            thread_id=thread_id,
            metadata=metadata,
            options=options,
            only_if_idle=only_if_idle,
            thread_metadata=thread_metadata,
        )

    async def delete_execution(self, execution_id: str) -> None:
        await self._write(q.delete_execution, execution_id)

    async def get_execution(self, execution_id: str) -> Execution:
        return await self._get(q.get_execution, execution_id)

    async def list_executions(
        self,
        limit: int,
        cursor: str | None,
        workflow_id: int | None = None,
        status: ExecutionStatus | None = None,
        thread_id: str | None = None,
    ) -> Page[Execution]:
        return await self._read(q.list_executions, limit, cursor, workflow_id, status, thread_id)

    async def claim_execution(self, execution_id: str) -> Execution | None:
        """queued → running, in its thread's order (see ``graphrun.store.base.Store``)."""
        return await self._set(q.claim_execution, execution_id)

    async def blocked_on_thread(self, execution_id: str) -> bool:
        return await self._get(q.blocked_on_thread, execution_id)

    async def next_queued_on_thread(self, thread_id: str) -> str | None:
        return await self._get(q.next_queued_on_thread, thread_id)

    async def finish_execution(
        self,
        execution_id: str,
        attempt: int,
        status: ExecutionStatus,
        output: Any = None,
        error: dict[str, Any] | None = None,
    ) -> Execution | None:
        if not status.finished:
            raise ValueError(f"{status} is not a final status")
        return await self._set(q.finish_execution, execution_id, attempt, status, output, error)

    async def requeue_execution(self, execution_id: str, attempt: int) -> Execution | None:
        """running (this attempt) → queued, to be taken over; None if that attempt no longer runs."""
        return await self._write(q.requeue_execution, execution_id, attempt)

    async def executions_in(
        self, status: ExecutionStatus, limit: int, created_before: datetime | None = None
    ) -> list[Execution]:
        """Oldest first: what the sweeper checks."""
        return await self._read(q.executions_in, status, limit, created_before)

    async def cancel_queued(self, execution_id: str) -> Execution | None:
        return await self._write(q.cancel_queued, execution_id)

    async def resume_execution(self, execution_id: str, resume: Any) -> Execution:
        return await self._write(q.resume_execution, execution_id, resume)

    async def cancel_interrupted(self, execution_id: str) -> Execution | None:
        return await self._write(q.cancel_interrupted, execution_id)

    # -- threads --------------------------------------------------------------------------------

    async def create_thread(
        self, thread_id: str | None = None, metadata: dict[str, Any] | None = None, if_exists: IfExists = "raise"
    ) -> Thread:
        return await self._write(q.create_thread, thread_id, metadata, if_exists)

    async def get_thread(self, thread_id: str) -> Thread:
        return await self._get(q.get_thread, thread_id)

    async def update_thread(self, thread_id: str, metadata: dict[str, Any]) -> Thread:
        return await self._write(q.update_thread, thread_id, metadata)

    async def delete_thread(self, thread_id: str) -> None:
        await self._write(q.delete_thread, thread_id)

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
    ) -> list[Thread]:
        return await self._read(
            q.search_threads,
            ids=ids,
            metadata=metadata,
            values=values,
            status=status,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            sort_order=sort_order,
        )

    async def count_threads(
        self, *, metadata: dict[str, Any] | None = None, values: dict[str, Any] | None = None, status: str | None = None
    ) -> int:
        return await self._read(q.count_threads, metadata=metadata, values=values, status=status)

    async def copy_thread(self, thread_id: str) -> Thread:
        return await self._write(q.copy_thread, thread_id)

    async def set_thread_state(
        self, thread_id: str, *, status: str, values: Any, interrupts: dict[str, list[dict[str, Any]]], error: Any
    ) -> None:
        await self._set(q.set_thread_state, thread_id, status=status, values=values, interrupts=interrupts, error=error)


async def open_store(url: str, *, migrate: bool = True, quick_on_loop: bool = False, **engine_kw: Any) -> SQLStore:
    """Connect to the store and bring its schema up to date. ``quick_on_loop``: on SQLite, run point
    operations on the event loop (see ``SQLiteRunner``): for a worker, not for an API process."""
    from graphrun.store.migrate import upgrade, upgrade_sqlite

    runner: SQLiteRunner | AsyncRunner = (
        SQLiteRunner(url, quick_on_loop=quick_on_loop, **engine_kw)
        if is_sqlite(url)
        else AsyncRunner(make_async_engine(url, **engine_kw))
    )
    if migrate:
        try:
            if isinstance(runner, SQLiteRunner):
                # In a thread: waiting for another process's (or this loop's) migration must not
                # freeze the event loop.
                await runner.run_blocking(upgrade_sqlite)
            else:
                await upgrade(runner.engine)
        except (OperationalError, OSError) as exc:
            await runner.close()
            raise BackendUnavailableError("database", exc) from exc
        except BaseException:
            await runner.close()  # its threads and connections
            raise
    return SQLStore(runner)
