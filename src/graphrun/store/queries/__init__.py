"""The store's operations, each one synchronous function on one transaction's connection.

``SQLStore`` runs each as a whole: in a thread on SQLite, under ``run_sync`` on PostgreSQL (see
``graphrun.store.runner``). So nothing here may await, and each function is one transaction.

Split by concern: ``workflows`` (workflows, versions, dependencies) and ``executions``; what both
use is in ``common``. Callers use this package as one namespace (``from graphrun.store import
queries as q``).
"""

from graphrun.store.queries.common import new_execution_id, ping
from graphrun.store.queries.executions import (
    cancel_queued,
    claim_execution,
    create_execution,
    delete_execution,
    executions_in,
    finish_execution,
    get_execution,
    list_executions,
    requeue_execution,
)
from graphrun.store.queries.workflows import (
    create_workflow,
    delete_workflow,
    find_workflow,
    get_version,
    get_workflow,
    list_workflows,
    popular_workflows,
    record_dependencies,
    update_workflow,
)

__all__ = [
    "cancel_queued",
    "claim_execution",
    "create_execution",
    "create_workflow",
    "delete_execution",
    "delete_workflow",
    "executions_in",
    "find_workflow",
    "finish_execution",
    "get_execution",
    "get_version",
    "get_workflow",
    "list_executions",
    "list_workflows",
    "new_execution_id",
    "ping",
    "popular_workflows",
    "record_dependencies",
    "requeue_execution",
    "update_workflow",
]
