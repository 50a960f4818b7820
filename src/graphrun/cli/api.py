"""``graphrun api``: the API under Gunicorn with Uvicorn workers.

Settings suited to long SSE connections: asynchronous workers (an SSE stream never blocks one), a
worker ``timeout`` that only measures the event loop's liveness, and a graceful timeout so that a
restart lets streams see their next event or a clean close. Clients resume with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gunicorn.app.base import BaseApplication

from graphrun.cli import ports
from graphrun.settings import Settings
from graphrun.store import open_store


class GunicornApp(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from graphrun.api import create_app
        from graphrun.heap import freeze_startup_heap

        app = create_app(self.settings)
        freeze_startup_heap()
        return app


def _child_exit(_server: object, worker: Any) -> None:
    """A Gunicorn worker ended (restarted, killed): drop its share of the live gauges (its SSE
    clients, its hub's streams) from the machine's /metrics."""
    from graphrun.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.api_workers,
        "worker_class": "uvicorn_worker.UvicornWorker",
        "timeout": settings.api_timeout_s,
        "graceful_timeout": 10,
        "keepalive": 75,
        "loglevel": settings.log_level.lower(),
        "accesslog": None,
        "proc_name": "graphrun-api",
        # The app is built once in the master and forked: a worker starts (or restarts after a crash)
        # without importing anything, so its event loop answers Gunicorn's heartbeat at once, and
        # the workers share the start-up heap's pages (freeze_startup_heap). Nothing in create_app
        # opens a connection or a thread: each worker's lifespan does, after the fork.
        "preload_app": True,
        "child_exit": _child_exit,
    }


def run_api(settings: Settings) -> int:
    settings.require_redis_url()
    # Gunicorn binds later and, on a taken port, retries then exits with lines of its own: find out
    # now, in one line.
    ports.bind(settings.host, settings.port, "--port or GRAPHRUN_PORT").close()

    async def migrate() -> None:
        store = await open_store(settings.sqlalchemy_url)  # once in the master, before forking
        await store.close()

    asyncio.run(migrate())
    GunicornApp(settings, gunicorn_options(settings)).run()
    return 0
