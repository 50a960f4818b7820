"""Graphs that are always registered: ``chain`` (demos, tests, benchmarks) and the knowledge-base
agent ``kb_agent`` with its retrieval tool ``kb_search``."""
