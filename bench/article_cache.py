"""The article's versioned multi-level cache, implemented faithfully as the baseline.

Local memory holds the compiled graph and the version it was stored under; Redis holds the version.
Every ``get`` reads the local version, then the remote version (one Redis round trip), compares, and
returns the local graph. ``set`` reads the *current* remote version and stores the graph under it —
the race: a graph built from the old definition, stored after an ``evict``, is tagged with the new
version and served as fresh.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis


class SimpleMemoryCache:
    """aiocache's SimpleMemoryCache surface, as the article uses it (async get/set)."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        return self._data.get(key)

    async def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        self._data[key] = value

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)


class MultiLevelCache:
    def __init__(self, redis: Redis) -> None:
        self.local_cache = SimpleMemoryCache()
        self.remote = redis

    async def get(self, key: str) -> Any:
        local_version = await self.local_cache.get(f"{key}:version")
        if local_version is None:
            return None
        raw = await self.remote.get(f"{key}:version")
        remote_version = int(raw) if raw is not None else 0
        if local_version < remote_version:
            await self._clear_local(key)
            return None
        return await self.local_cache.get(f"{key}:data")

    async def set(self, key: str, value: Any, expire: int = 60) -> None:
        raw = await self.remote.get(f"{key}:version")
        current_version = int(raw) if raw is not None else 0
        await self.local_cache.set(f"{key}:data", value, ttl=expire)
        await self.local_cache.set(f"{key}:version", current_version, ttl=expire)

    async def evict(self, key: str) -> None:
        raw = await self.remote.get(f"{key}:version")
        current_version = int(raw) if raw is not None else 0
        await self.remote.set(f"{key}:version", current_version + 1)
        await self._clear_local(key)

    async def _clear_local(self, key: str) -> None:
        await self.local_cache.delete(f"{key}:data")
        await self.local_cache.delete(f"{key}:version")
