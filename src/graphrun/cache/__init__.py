"""The per-process cache of compiled graphs, keyed by (workflow id, version)."""

from graphrun.cache.graphs import GraphCache
from graphrun.cache.invalidation import WorkflowChanges

__all__ = ["GraphCache", "WorkflowChanges"]
