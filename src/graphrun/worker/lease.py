"""One execution's lease while it runs on this worker: taken after the claim, renewed every third of
its time, released at the end.

What must stay true:
- the attempt number is the lease's value and fences every write of the run (events, checkpoints,
  final status), so an attempt that lost its lease writes nothing more;
- a renewal that finds the lease gone stops the run at once (``on_lost``): another attempt owns the
  execution now. A renewal that fails (Redis briefly away) is not a loss; the next one retries;
- a lost lease is never released (it is not this attempt's any more).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from graphrun.redis.lease import Leases

log = logging.getLogger("graphrun.worker")


class HeldLease:
    def __init__(self, leases: Leases, execution_id: str, attempt: int) -> None:
        self._leases = leases
        self.execution_id = execution_id
        self.attempt = attempt
        self._renewing: asyncio.Task[None] | None = None

    @property
    def fence(self) -> tuple[str, int]:
        """What an event or checkpoint write checks: the lease key and this attempt."""
        return self._leases.key(self.execution_id), self.attempt

    async def acquire(self) -> bool:
        return await self._leases.acquire(self.execution_id, self.attempt)

    def keep(self, on_lost: Callable[[], object]) -> None:
        """Renew it in the background until :meth:`stop`; call ``on_lost`` if it is found gone."""
        self._renewing = asyncio.get_running_loop().create_task(self._renew(on_lost))

    def stop(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()

    async def release(self) -> None:
        """Give it back; one left behind expires by itself."""
        try:
            await self._leases.release(self.execution_id, self.attempt)
        except Exception as exc:  # noqa: BLE001 - it expires by itself
            log.warning("execution %s: lease not released (%s)", self.execution_id, exc)

    async def _renew(self, on_lost: Callable[[], object]) -> None:
        interval = self._leases.ttl_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self._leases.renew(self.execution_id, self.attempt)
            except Exception as exc:  # noqa: BLE001 - Redis briefly away is not a lost lease
                log.warning("execution %s: lease renewal failed (%s); retrying", self.execution_id, exc)
                continue
            if not held:
                log.warning(
                    "execution %s attempt %s: lease lost (this worker was paused or cut off); stopping",
                    self.execution_id,
                    self.attempt,
                )
                on_lost()
                return
