"""The store's operations, each one synchronous function on one transaction's connection.

``SQLStore`` runs each as a whole: in a thread on SQLite, under ``run_sync`` on PostgreSQL (see
``graphrun.store.runner``). So nothing here may await, and each function is one transaction.

Split by concern: ``workflows`` (workflows, versions, dependencies), ``assistants`` (workflows as
LangGraph assistants), ``executions`` and ``threads``; what they share is in ``common``. Callers use
this package as one namespace (``from graphrun.store import queries as q``).
"""

from graphrun.store.queries.assistants import (
    count_workflows,
    ensure_default_assistants,
    get_workflow_by_assistant,
    list_versions,
    search_workflows,
    set_latest_version,
)
from graphrun.store.queries.common import new_execution_id, ping
from graphrun.store.queries.executions import (
    blocked_on_thread,
    cancel_interrupted,
    cancel_queued,
    claim_execution,
    create_execution,
    delete_execution,
    executions_in,
    finish_execution,
    get_execution,
    list_executions,
    next_queued_on_thread,
    requeue_execution,
    resume_execution,
)
from graphrun.store.queries.threads import (
    copy_thread,
    count_threads,
    create_thread,
    delete_thread,
    get_thread,
    search_threads,
    set_thread_state,
    update_thread,
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
    "blocked_on_thread",
    "cancel_interrupted",
    "cancel_queued",
    "claim_execution",
    "copy_thread",
    "count_threads",
    "count_workflows",
    "create_execution",
    "create_thread",
    "create_workflow",
    "delete_execution",
    "delete_thread",
    "delete_workflow",
    "ensure_default_assistants",
    "executions_in",
    "find_workflow",
    "finish_execution",
    "get_execution",
    "get_thread",
    "get_version",
    "get_workflow",
    "get_workflow_by_assistant",
    "list_executions",
    "list_versions",
    "list_workflows",
    "new_execution_id",
    "next_queued_on_thread",
    "ping",
    "popular_workflows",
    "record_dependencies",
    "requeue_execution",
    "resume_execution",
    "search_threads",
    "search_workflows",
    "set_latest_version",
    "set_thread_state",
    "update_thread",
    "update_workflow",
]
