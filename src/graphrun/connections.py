"""How every process connects to Redis.

A bounded, *blocking* pool: under a burst, callers wait briefly for a free connection instead of
failing, and the number of connections a process holds has a hard ceiling.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

POOL_SIZE = 32


def shared_client(url: str, max_connections: int = POOL_SIZE) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=10, health_check_interval=30, socket_keepalive=True
    )
    return Redis(connection_pool=pool)


def dedicated_client(url: str) -> Redis:
    """One connection for one long blocking reader (no read timeout shorter than its block)."""
    return Redis.from_url(url, single_connection_client=True, socket_keepalive=True, socket_timeout=None)
