"""The per-process cache of compiled graphs, keyed by (workflow id, version)."""

from graphrun.cache.graphs import GraphCache

__all__ = ["GraphCache"]
