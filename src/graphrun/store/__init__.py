"""The SQL store of workflows, their versions and executions (SQLite or PostgreSQL)."""

from graphrun.store.base import Execution, ExecutionStatus, Page, Store, Workflow
from graphrun.store.sql import SQLStore, open_store

__all__ = ["Execution", "ExecutionStatus", "Page", "SQLStore", "Store", "Workflow", "open_store"]
