"""What every route needs, built once per API process by ``create_app``'s lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from taskiq_redis import ListQueueBroker

from graphrun.api.auth import Auth
from graphrun.cache.invalidation import WorkflowChanges
from graphrun.cancel import CancelBus
from graphrun.events.hub import StreamHub
from graphrun.events.log import EventLog
from graphrun.keys import Keys
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
    broker: ListQueueBroker
    cancels: CancelBus
    changes: WorkflowChanges
    auth: Auth


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.graphrun
    return state


State = Annotated[AppState, Depends(_state)]


def require_key(request: Request) -> None:
    _state(request).auth.require_key(request)
