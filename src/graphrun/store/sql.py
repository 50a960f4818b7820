"""The store on SQLAlchemy 2 (async): SQLite through aiosqlite, PostgreSQL through psycopg 3."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from graphrun.errors import BackendUnavailableError, NotFoundError, StoreError
from graphrun.store.base import Execution, ExecutionStatus, Page, Workflow, WorkflowVersion
from graphrun.store.schema import executions, workflow_deps, workflow_versions, workflows


def _now() -> datetime:
    return datetime.now(UTC)


def new_execution_id() -> str:
    """128 random bits: not guessable from any other id."""
    return secrets.token_urlsafe(16)


def _encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("\x1f".join(parts).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, n: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise StoreError("malformed cursor") from None
    parts = raw.split("\x1f")
    if len(parts) != n:
        raise StoreError("malformed cursor")
    return parts


def _workflow(row: sa.Row[Any]) -> Workflow:
    m = row._mapping
    return Workflow(
        id=m["id"],
        name=m["name"],
        graph=m["graph"],
        config=m["config"],
        version=m["version"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _execution(row: sa.Row[Any]) -> Execution:
    m = row._mapping
    return Execution(
        id=m["id"],
        workflow_id=m["workflow_id"],
        workflow_version=m["workflow_version"],
        status=ExecutionStatus(m["status"]),
        input=m["input"],
        output=m["output"],
        error=m["error"],
        attempt=m["attempt"],
        timeout_s=m["timeout_s"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside one writer across processes; the busy timeout makes a second
    # writer wait for the lock instead of failing with "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, **engine_kw: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **engine_kw)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine_kw.setdefault("pool_pre_ping", True)
    engine_kw.setdefault("pool_size", 10)
    return create_async_engine(url, **engine_kw)


class SQLStore:
    """The SQL implementation of :class:`graphrun.store.base.Store`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            # Connection refused, server gone, database locked past the busy timeout.
            raise BackendUnavailableError("database", exc.orig) from exc
        except OSError as exc:
            raise BackendUnavailableError("database", exc) from exc

    async def ping(self) -> None:
        async with self._tx() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # -- workflows ------------------------------------------------------------------------------

    async def create_workflow(self, name: str, graph: str, config: dict[str, Any]) -> Workflow:
        now = _now()
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    workflows.insert()
                    .values(name=name, graph=graph, config=config, version=1, created_at=now, updated_at=now)
                    .returning(*workflows.c)
                )
            ).one()
            await conn.execute(
                workflow_versions.insert().values(
                    workflow_id=row.id, version=1, graph=graph, config=config, created_at=now
                )
            )
        return _workflow(row)

    async def get_workflow(self, workflow_id: int) -> Workflow:
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    sa.select(workflows).where(workflows.c.id == workflow_id, workflows.c.deleted_at.is_(None))
                )
            ).one_or_none()
        if row is None:
            raise NotFoundError(f"workflow {workflow_id} not found")
        return _workflow(row)

    async def find_workflow(self, name: str) -> Workflow:
        """The newest live workflow with this name."""
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    sa.select(workflows)
                    .where(workflows.c.name == name, workflows.c.deleted_at.is_(None))
                    .order_by(workflows.c.id.desc())
                    .limit(1)
                )
            ).one_or_none()
        if row is None:
            raise NotFoundError(f"no workflow named {name!r}")
        return _workflow(row)

    async def list_workflows(self, limit: int, cursor: str | None) -> Page[Workflow]:
        query = sa.select(workflows).where(workflows.c.deleted_at.is_(None))
        if cursor:
            (after,) = _decode_cursor(cursor, 1)
            if not after.isdigit():
                raise StoreError("malformed cursor")
            query = query.where(workflows.c.id > int(after))
        async with self._tx() as conn:
            rows = (await conn.execute(query.order_by(workflows.c.id).limit(limit + 1))).all()
        items = [_workflow(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, _encode_cursor(str(items[-1].id)) if more else None)

    async def update_workflow(
        self,
        workflow_id: int,
        *,
        name: str | None = None,
        graph: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> Workflow:
        now = _now()
        values: dict[str, Any] = {"version": workflows.c.version + 1, "updated_at": now}
        if name is not None:
            values["name"] = name
        if graph is not None:
            values["graph"] = graph
        if config is not None:
            values["config"] = config
        async with self._tx() as conn:
            # One UPDATE … SET version = version + 1 RETURNING: the row lock serialises concurrent
            # updates, so each gets its own version, and the version row is written in the same
            # transaction.
            row = (
                await conn.execute(
                    workflows.update()
                    .where(workflows.c.id == workflow_id, workflows.c.deleted_at.is_(None))
                    .values(**values)
                    .returning(*workflows.c)
                )
            ).one_or_none()
            if row is None:
                raise NotFoundError(f"workflow {workflow_id} not found")
            await conn.execute(
                workflow_versions.insert().values(
                    workflow_id=workflow_id, version=row.version, graph=row.graph, config=row.config, created_at=now
                )
            )
            await self._bump_dependents(conn, workflow_id, now)
        return _workflow(row)

    async def _bump_dependents(self, conn: AsyncConnection, workflow_id: int, now: datetime) -> None:
        """Give every workflow that embeds ``workflow_id`` (transitively) a new version."""
        seen = {workflow_id}
        frontier = [workflow_id]
        while frontier:
            parents = (
                await conn.execute(
                    sa.select(workflow_deps.c.parent_id).where(workflow_deps.c.child_id.in_(frontier)).distinct()
                )
            ).scalars()
            frontier = [p for p in parents if p not in seen]
            seen.update(frontier)
            for parent in frontier:
                row = (
                    await conn.execute(
                        workflows.update()
                        .where(workflows.c.id == parent, workflows.c.deleted_at.is_(None))
                        .values(version=workflows.c.version + 1, updated_at=now)
                        .returning(workflows.c.version, workflows.c.graph, workflows.c.config)
                    )
                ).one_or_none()
                if row is not None:
                    await conn.execute(
                        workflow_versions.insert().values(
                            workflow_id=parent, version=row.version, graph=row.graph, config=row.config, created_at=now
                        )
                    )

    async def record_dependencies(self, workflow_id: int, children: dict[int, int]) -> bool:
        """Record that ``workflow_id``'s graph embeds these children at these versions.

        False if a child changed since it was loaded: the graph just built is already stale and
        must not be cached. Reading the children's versions under a row lock orders this against a
        concurrent update of a child, which either sees the recorded edge (and bumps the parent) or
        commits first (and this sees its new version).
        """
        if not children:
            return True
        async with self._tx() as conn:
            existing = set(
                (
                    await conn.execute(
                        sa.select(workflow_deps.c.child_id).where(workflow_deps.c.parent_id == workflow_id)
                    )
                ).scalars()
            )
            new = [c for c in children if c not in existing]
            if new:
                await conn.execute(workflow_deps.insert(), [{"parent_id": workflow_id, "child_id": c} for c in new])
            query = sa.select(workflows.c.id, workflows.c.version).where(
                workflows.c.id.in_(list(children)), workflows.c.deleted_at.is_(None)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            current = {r.id: r.version for r in (await conn.execute(query)).all()}
        return all(current.get(child) == version for child, version in children.items())

    async def popular_workflows(self, limit: int, since: datetime) -> list[Workflow]:
        """Live workflows with the most executions since ``since`` (for prewarming)."""
        counts = (
            sa.select(executions.c.workflow_id, sa.func.count().label("n"))
            .where(executions.c.created_at >= since)
            .group_by(executions.c.workflow_id)
            .subquery()
        )
        query = (
            sa.select(workflows)
            .join(counts, counts.c.workflow_id == workflows.c.id)
            .where(workflows.c.deleted_at.is_(None))
            .order_by(counts.c.n.desc(), workflows.c.id)
            .limit(limit)
        )
        async with self._tx() as conn:
            return [_workflow(r) for r in (await conn.execute(query)).all()]

    async def delete_workflow(self, workflow_id: int) -> None:
        now = _now()
        async with self._tx() as conn:
            result = await conn.execute(
                workflows.update()
                .where(workflows.c.id == workflow_id, workflows.c.deleted_at.is_(None))
                .values(deleted_at=now)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"workflow {workflow_id} not found")
            # Parents that embed it get a new version: their next build fails loudly instead of
            # running on with a deleted sub-workflow.
            await self._bump_dependents(conn, workflow_id, now)
            await conn.execute(workflow_deps.delete().where(workflow_deps.c.parent_id == workflow_id))

    async def get_version(self, workflow_id: int, version: int) -> WorkflowVersion:
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    sa.select(workflow_versions).where(
                        workflow_versions.c.workflow_id == workflow_id, workflow_versions.c.version == version
                    )
                )
            ).one_or_none()
        if row is None:
            raise NotFoundError(f"workflow {workflow_id} has no version {version}")
        return WorkflowVersion(workflow_id, version, row.graph, row.config)

    # -- executions -----------------------------------------------------------------------------

    async def create_execution(self, workflow_id: int, input: dict[str, Any], timeout_s: float | None) -> Execution:
        now = _now()
        async with self._tx() as conn:
            version = (
                await conn.execute(
                    sa.select(workflows.c.version).where(
                        workflows.c.id == workflow_id, workflows.c.deleted_at.is_(None)
                    )
                )
            ).scalar_one_or_none()
            if version is None:
                raise NotFoundError(f"workflow {workflow_id} not found")
            row = (
                await conn.execute(
                    executions.insert()
                    .values(
                        id=new_execution_id(),
                        workflow_id=workflow_id,
                        workflow_version=version,
                        status=ExecutionStatus.QUEUED.value,
                        input=input,
                        attempt=0,
                        timeout_s=timeout_s,
                        created_at=now,
                    )
                    .returning(*executions.c)
                )
            ).one()
        return _execution(row)

    async def delete_execution(self, execution_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute(executions.delete().where(executions.c.id == execution_id))

    async def get_execution(self, execution_id: str) -> Execution:
        async with self._tx() as conn:
            row = (await conn.execute(sa.select(executions).where(executions.c.id == execution_id))).one_or_none()
        if row is None:
            raise NotFoundError(f"execution {execution_id} not found")
        return _execution(row)

    async def list_executions(
        self,
        limit: int,
        cursor: str | None,
        workflow_id: int | None = None,
        status: ExecutionStatus | None = None,
    ) -> Page[Execution]:
        query = sa.select(executions)
        if workflow_id is not None:
            query = query.where(executions.c.workflow_id == workflow_id)
        if status is not None:
            query = query.where(executions.c.status == status.value)
        if cursor:
            ts, last_id = _decode_cursor(cursor, 2)
            try:
                at = datetime.fromisoformat(ts)
            except ValueError:
                raise StoreError("malformed cursor") from None
            # Newest first; (created_at, id) is unique, so the page boundary is exact.
            query = query.where(
                sa.or_(
                    executions.c.created_at < at,
                    sa.and_(executions.c.created_at == at, executions.c.id < last_id),
                )
            )
        query = query.order_by(executions.c.created_at.desc(), executions.c.id.desc()).limit(limit + 1)
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
        items = [_execution(r) for r in rows[:limit]]
        more = len(rows) > limit
        next_cursor = _encode_cursor(items[-1].created_at.isoformat(), items[-1].id) if more else None
        return Page(items, next_cursor)

    async def _transition(self, where: list[Any], values: dict[str, Any]) -> Execution | None:
        async with self._tx() as conn:
            row = (
                await conn.execute(executions.update().where(*where).values(**values).returning(*executions.c))
            ).one_or_none()
        return _execution(row) if row is not None else None

    async def claim_execution(self, execution_id: str) -> Execution | None:
        return await self._transition(
            [executions.c.id == execution_id, executions.c.status == ExecutionStatus.QUEUED.value],
            {"status": ExecutionStatus.RUNNING.value, "started_at": _now(), "attempt": executions.c.attempt + 1},
        )

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
        return await self._transition(
            [
                executions.c.id == execution_id,
                executions.c.status == ExecutionStatus.RUNNING.value,
                executions.c.attempt == attempt,
            ],
            {"status": status.value, "output": output, "error": error, "finished_at": _now()},
        )

    async def requeue_execution(self, execution_id: str, attempt: int) -> Execution | None:
        """running (this attempt) → queued, to be taken over; None if that attempt no longer runs."""
        return await self._transition(
            [
                executions.c.id == execution_id,
                executions.c.status == ExecutionStatus.RUNNING.value,
                executions.c.attempt == attempt,
            ],
            {"status": ExecutionStatus.QUEUED.value},
        )

    async def executions_in(
        self, status: ExecutionStatus, limit: int, created_before: datetime | None = None
    ) -> list[Execution]:
        """Oldest first: what the sweeper checks."""
        query = sa.select(executions).where(executions.c.status == status.value)
        if created_before is not None:
            query = query.where(executions.c.created_at < created_before)
        query = query.order_by(executions.c.created_at, executions.c.id).limit(limit)
        async with self._tx() as conn:
            return [_execution(r) for r in (await conn.execute(query)).all()]

    async def cancel_queued(self, execution_id: str) -> Execution | None:
        return await self._transition(
            [executions.c.id == execution_id, executions.c.status == ExecutionStatus.QUEUED.value],
            {"status": ExecutionStatus.CANCELLED.value, "finished_at": _now()},
        )


async def open_store(url: str, *, migrate: bool = True, **engine_kw: Any) -> SQLStore:
    """Connect to the store and bring its schema up to date."""
    from graphrun.store.migrate import upgrade

    engine = make_engine(url, **engine_kw)
    if migrate:
        try:
            await upgrade(engine)
        except (OperationalError, OSError) as exc:
            await engine.dispose()
            raise BackendUnavailableError("database", exc) from exc
    return SQLStore(engine)
