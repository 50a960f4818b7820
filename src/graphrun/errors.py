"""The one exception tree of graphrun.

    GraphrunError
    ├── ConfigError                 a setting or the graph registry file is wrong
    ├── GraphError                  building a graph failed
    │   ├── UnknownGraphError       the name is not registered
    │   └── FactoryError            the factory raised or returned something unusable
    ├── StoreError                  the SQL store
    │   ├── NotFoundError           no such workflow or execution
    │   └── ConflictError           the record is not in a state that allows this
    ├── EventLogError               the Redis event log
    │   ├── BadEventIdError         a Last-Event-ID that is not a stream id
    │   └── FencedError             a write by a worker that no longer holds the execution's lease
    └── BackendUnavailableError     Redis or the database cannot be reached

The API maps these to HTTP statuses in one place (``graphrun.api.errors``).
"""

from __future__ import annotations


class GraphrunError(Exception):
    """Root of every error graphrun raises on purpose."""


class ConfigError(GraphrunError):
    pass


class GraphError(GraphrunError):
    pass


class UnknownGraphError(GraphError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown graph {name!r}; registered graphs: {', '.join(known) or 'none'}")


class FactoryError(GraphError):
    pass


class StoreError(GraphrunError):
    pass


class NotFoundError(StoreError):
    pass


class ConflictError(StoreError):
    def __init__(self, message: str, status: str | None = None) -> None:
        self.status = status
        super().__init__(message)


class EventLogError(GraphrunError):
    pass


class BadEventIdError(EventLogError):
    pass


class FencedError(EventLogError):
    pass


class BackendUnavailableError(GraphrunError):
    def __init__(self, backend: str, cause: BaseException | None = None) -> None:
        self.backend = backend
        super().__init__(f"{backend} is unreachable" + (f": {cause}" if cause else ""))
