"""What every route needs, built once per API process by ``create_app``'s lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from langgraph.checkpoint.base import BaseCheckpointSaver
from redis.asyncio import Redis

from graphrun.api.auth import Auth
from graphrun.cache.graphs import GraphCache
from graphrun.cache.invalidation import WorkflowChanges
from graphrun.events.hub import StreamHub
from graphrun.events.log import EventLog
from graphrun.redis.cancel import CancelBus
from graphrun.redis.keys import Keys
from graphrun.redis.queue import TaskQueue
from graphrun.registry import GraphRegistry
from graphrun.settings import Settings
from graphrun.store.base import Store


@dataclass
class AppState:
    settings: Settings
    keys: Keys
    registry: GraphRegistry
    store: Store
    redis: Redis
    events: EventLog
    hub: StreamHub
    queue: TaskQueue
    cancels: CancelBus
    changes: WorkflowChanges
    auth: Auth
    # LangGraph threads: their graphs (state, history, schemas) and their checkpoints.
    graphs: GraphCache
    thread_saver: BaseCheckpointSaver  # type: ignore[type-arg]


async def _state(request: Request) -> AppState:
    state: AppState = request.app.state.graphrun
    return state


State = Annotated[AppState, Depends(_state)]


async def require_key(request: Request) -> None:
    # async: FastAPI runs plain-function dependencies in a thread pool, on every request.
    state: AppState = request.app.state.graphrun
    state.auth.require_key(request)
