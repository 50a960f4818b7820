"""How every process connects to Redis.

A bounded, *blocking* pool: under a burst, callers wait briefly for a free connection instead of
failing, and the number of connections a process holds has a hard ceiling. Every connection carries
a name (``CLIENT SETNAME``), so Redis's ``CLIENT LIST`` shows which part of graphrun holds it.
"""

from __future__ import annotations

from enum import StrEnum

from redis.asyncio import BlockingConnectionPool, Redis


class ConnectionName(StrEnum):
    API = "graphrun-api"
    WORKER = "graphrun-worker"
    STREAM_HUB = "graphrun-stream-hub"


POOL_SIZE = 32
"""A worker's pool, for what does not go through its batcher (which has a connection of its own):
lease renewals, checkpoint reads, the sweeper's reads."""

API_POOL_SIZE = 2
"""An API process's pool, for the few commands sent outside its batcher (which has a connection of
its own): a stream's first PING, a log's last id, the state routes' reads. SSE clients never hold a
connection (the stream hub reads for all of them on its own one), so a burst of clients waits a
moment for one of these instead of opening more."""


def shared_client(url: str, max_connections: int = POOL_SIZE, *, name: ConnectionName | None = None) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        health_check_interval=30,
        socket_keepalive=True,
        client_name=name,
    )
    # from_pool: closing the client closes the pool's connections too.
    return Redis.from_pool(pool)


def dedicated_client(url: str, *, name: ConnectionName | None = None) -> Redis:
    """One connection for one long blocking reader (no read timeout shorter than its block)."""
    return Redis.from_url(
        url, single_connection_client=True, socket_keepalive=True, socket_timeout=None, client_name=name
    )
