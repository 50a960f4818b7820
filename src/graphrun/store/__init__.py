"""The SQL store of workflows, their versions and executions (SQLite or PostgreSQL)."""

from graphrun.store.base import (
    Execution,
    ExecutionStatus,
    Page,
    Store,
    Thread,
    Workflow,
    WorkflowVersion,
    default_assistant_id,
)
from graphrun.store.sql import SQLStore, open_store

__all__ = [
    "Execution",
    "ExecutionStatus",
    "Page",
    "SQLStore",
    "Store",
    "Thread",
    "Workflow",
    "WorkflowVersion",
    "default_assistant_id",
    "open_store",
]
