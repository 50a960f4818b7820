"""Table definitions (SQLAlchemy Core). Changes here need a migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware: datetime = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware


workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("graph", sa.String(200), nullable=False),
    sa.Column("config", JSONType, nullable=False),
    # The current version (what a new execution pins); ``version_seq`` is the highest ever written,
    # so an update after "set latest" to an older version still gets a new number.
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("version_seq", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Soft delete: versions stay readable so executions pinned to them still run and list.
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    # The LangGraph face of a workflow (an assistant).
    sa.Column("assistant_id", sa.String(36), nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("context", JSONType, nullable=False),
    sa.Index("ix_workflows_name", "name"),
    sa.Index("uq_workflows_assistant_id", "assistant_id", unique=True),
)

workflow_versions = sa.Table(
    "workflow_versions",
    metadata,
    sa.Column("workflow_id", sa.Integer, sa.ForeignKey("workflows.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("graph", sa.String(200), nullable=False),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("context", JSONType, nullable=False),
)

# Which stored workflows a workflow's graph embeds (recorded when it is built). Updating or deleting
# a child bumps the version of every workflow that embeds it, transitively, so a compiled parent can
# never outlive the child it was built with.
workflow_deps = sa.Table(
    "workflow_deps",
    metadata,
    sa.Column("parent_id", sa.Integer, primary_key=True),
    sa.Column("child_id", sa.Integer, primary_key=True),
    sa.Index("ix_workflow_deps_child", "child_id"),
)

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("workflow_id", sa.Integer, nullable=False),
    sa.Column("workflow_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("input", JSONType, nullable=False),
    sa.Column("output", JSONType, nullable=True),
    sa.Column("error", JSONType, nullable=True),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("timeout_s", sa.Float, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("thread_id", sa.String(36), nullable=True),
    sa.Column("metadata", JSONType, nullable=False),
    # A LangGraph run's options (graphrun.langgraph.runs writes them, the worker reads them).
    sa.Column("options", JSONType, nullable=False),
    # Set once, by the compare-and-set that resumes an interrupted execution: at most one resume wins.
    sa.Column("resumed_by", sa.String(64), nullable=True),
    sa.ForeignKeyConstraint(
        ["workflow_id", "workflow_version"],
        ["workflow_versions.workflow_id", "workflow_versions.version"],
    ),
    sa.Index("ix_executions_created", "created_at", "id"),
    sa.Index("ix_executions_workflow", "workflow_id", "created_at"),
    sa.Index("ix_executions_status", "status", "created_at"),
    sa.Index("ix_executions_thread", "thread_id", "created_at"),
)

# A LangGraph thread. Its state lives in the thread saver's checkpoints; ``values``, ``interrupts``
# and ``error`` are the copy of its last state that search and get answer from. The stored status is
# idle, interrupted or error: "busy" is computed from its executions when read.
threads = sa.Table(
    "threads",
    metadata,
    sa.Column("thread_id", sa.String(36), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("state_updated_at", UTCDateTime, nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("values", JSONType, nullable=True),
    sa.Column("interrupts", JSONType, nullable=False),
    sa.Column("error", JSONType, nullable=True),
    sa.Index("ix_threads_created", "created_at"),
)
