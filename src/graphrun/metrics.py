"""Every Prometheus metric graphrun exports, in one place.

Processes on one machine (``graphrun serve``, Gunicorn's workers) share one registry through
prometheus_client's multiprocess mode: the CLI points ``PROMETHEUS_MULTIPROC_DIR`` at a folder in the
data dir before any metric is created, and ``/metrics`` then reports every process of the machine,
workers included. Without it each process reports its own.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client import multiprocess as _mp

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Graph cache (issue: versioned multi-level graph cache).
CACHE_HITS = Counter("graphrun_graph_cache_hits_total", "Compiled-graph cache hits")
CACHE_MISSES = Counter("graphrun_graph_cache_misses_total", "Compiled-graph cache misses")
CACHE_BUILDS = Counter("graphrun_graph_cache_builds_total", "Graph builds", ["graph", "outcome"])
CACHE_BUILD_SECONDS = Histogram(
    "graphrun_graph_build_seconds",
    "Time to build (factory + compile) one graph",
    ["graph"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CACHE_ENTRIES = Gauge("graphrun_graph_cache_entries", "Compiled graphs held", multiprocess_mode="livesum")
CACHE_BYTES = Gauge(
    "graphrun_graph_cache_bytes",
    "Estimated memory held by cached graphs (measured at build)",
    multiprocess_mode="livesum",
)
CACHE_INVALIDATIONS = Counter("graphrun_graph_cache_invalidations_total", "Entries dropped for a newer version")

# Executions.
EXECUTIONS = Counter("graphrun_executions_total", "Executions finished by this process", ["status"])
RUNNING = Gauge("graphrun_executions_running", "Executions running now", multiprocess_mode="livesum")
SUBMITTED = Counter("graphrun_executions_submitted_total", "Executions accepted by the API")
ADMISSION_DEFERRED = Counter(
    "graphrun_worker_admission_deferred_total",
    "Times a worker process left executions on the queue because its event loop lagged",
)

# Event loop health (blocking code in a worker or an API process); role is "worker" or "api".
LOOP_STALLS = Counter("graphrun_event_loop_stalls_total", "Event-loop stalls over the threshold", ["role"])
LOOP_LAG = Histogram(
    "graphrun_event_loop_lag_seconds",
    "Observed event-loop lag",
    ["role"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Streams (API processes). livesum: a dead process's share leaves the sum once it is marked dead.
SSE_CLIENTS = Gauge("graphrun_sse_clients", "SSE clients connected now", multiprocess_mode="livesum")
HUB_STREAMS = Gauge(
    "graphrun_stream_hub_streams", "Execution streams the stream hub follows now", multiprocess_mode="livesum"
)


def exposition_registry() -> CollectorRegistry:
    """What /metrics reports: this machine's processes (or this process alone)."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        _mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def render() -> tuple[bytes, str]:
    return generate_latest(exposition_registry()), CONTENT_TYPE_LATEST


def serve_http(host: str, port: int) -> None:
    """/metrics on its own port, from a daemon thread: for processes without an API."""
    start_http_server(port, addr=host, registry=exposition_registry())


def mark_process_dead(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        _mp.mark_process_dead(pid)  # type: ignore[no-untyped-call]
