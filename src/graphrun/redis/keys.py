"""Every Redis key, stream and channel name graphrun uses, in one place.

All of them start with the configured prefix (``GRAPHRUN_REDIS_PREFIX``), so several deployments can
share one Redis server.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "graphrun:"

    @property
    def task_queue(self) -> str:
        """The TaskIQ list queue of execution ids."""
        return f"{self.prefix}tasks"

    @property
    def cancel_channel(self) -> str:
        """Pub/sub channel on which the API pushes cancel requests to every worker process."""
        return f"{self.prefix}cancel"

    @property
    def follow_channel(self) -> str:
        """Pub/sub channel on which the API tells every worker process that a client follows a
        just-submitted execution: it may start before its start grace ends."""
        return f"{self.prefix}follow"

    @property
    def workflow_channel(self) -> str:
        """Pub/sub channel announcing workflow updates and deletions (graph cache invalidation)."""
        return f"{self.prefix}workflows"

    def cancel_flag(self, execution_id: str) -> str:
        """Set when a cancel was requested; checked by a worker when it picks the execution up."""
        return f"{self.prefix}cancel:{execution_id}"

    def lease(self, execution_id: str) -> str:
        """Held by the worker running the execution; the value is its attempt (fencing token)."""
        return f"{self.prefix}lease:{execution_id}"

    @property
    def sweeper_lock(self) -> str:
        """Held by the one worker sweeping for lost executions at a time."""
        return f"{self.prefix}sweeper"

    def events(self, execution_id: str) -> str:
        """The Redis Stream holding one execution's event log."""
        return f"{self.prefix}events:{execution_id}"

    def execution_id_of(self, events_key: str) -> str:
        return events_key[len(self.prefix) + len("events:") :]

    def checkpoint_ids(self, thread_id: str) -> str:
        """Sorted set of one execution's LangGraph checkpoints (``ns NUL checkpoint_id``)."""
        return f"{self.prefix}ckpt:{thread_id}:ids"

    def checkpoints(self, thread_id: str) -> str:
        """Hash holding one execution's LangGraph checkpoints."""
        return f"{self.prefix}ckpt:{thread_id}"

    def checkpoint_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
        """Hash of the pending writes recorded against one checkpoint."""
        return f"{self.prefix}ckpt:{thread_id}:w:{checkpoint_ns}:{checkpoint_id}"
