"""An execution's time limit: the submit's ``timeout_s``, else its workflow version's own (config
``timeout_s``), else the default. A limit that cannot be read is the default one."""

from __future__ import annotations

import logging

from graphrun.registry import config_timeout_s
from graphrun.store.base import Execution, Store

log = logging.getLogger("graphrun.worker")

VERSIONS_KEPT = 4096


class TimeLimits:
    def __init__(self, store: Store, default_s: float) -> None:
        self._store = store
        self.default_s = default_s
        # Workflow versions never change, so neither does their own limit.
        self._of_version: dict[tuple[int, int], float | None] = {}

    async def of(self, execution: Execution) -> float:
        if execution.timeout_s:
            return execution.timeout_s
        key = (execution.workflow_id, execution.workflow_version)
        if key not in self._of_version:
            try:
                config = (await self._store.get_version(*key)).config
                self._of_version[key] = config_timeout_s(config)
            except Exception as exc:  # noqa: BLE001 - a limit we cannot read is the default one
                log.warning("execution %s: workflow time limit unreadable (%s); using the default", execution.id, exc)
                return self.default_s
            while len(self._of_version) > VERSIONS_KEPT:
                del self._of_version[next(iter(self._of_version))]
        return self._of_version[key] or self.default_s
