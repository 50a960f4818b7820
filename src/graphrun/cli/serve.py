"""``graphrun serve``: everything on one machine.

Starts the embedded Redis (unless GRAPHRUN_REDIS_URL is set), brings the SQLite schema up to date,
starts the worker processes, and serves the API in this process with Uvicorn. Ctrl-C stops the API,
then the workers, then Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess

import uvicorn

from graphrun.cli.worker import worker_command
from graphrun.redis.embedded import EmbeddedRedis, die_with_parent
from graphrun.settings import Settings
from graphrun.store import open_store

log = logging.getLogger("graphrun.serve")


def serve(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded: EmbeddedRedis | None = None
    workers: subprocess.Popen[bytes] | None = None
    try:
        if settings.redis_url is None:
            embedded = EmbeddedRedis(settings.data_dir)
            settings = settings.model_copy(update={"redis_url": embedded.start()})
            log.info("embedded Redis on 127.0.0.1:%s (append-only file in %s)", embedded.port, settings.data_dir)

        async def migrate() -> None:
            store = await open_store(settings.sqlalchemy_url)
            await store.close()

        asyncio.run(migrate())

        env = os.environ.copy()
        env["GRAPHRUN_REDIS_URL"] = settings.redis_url or ""
        env["GRAPHRUN_DATABASE_URL"] = settings.sqlalchemy_url.replace("sqlite+aiosqlite:", "sqlite:", 1)
        # The API's /metrics already reports the workers (one metrics folder for the machine).
        env["GRAPHRUN_WORKER_METRICS_PORT"] = "0"
        workers = subprocess.Popen(
            worker_command(settings.worker_processes),
            env=env,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )

        from graphrun.api import create_app

        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            access_log=False,
            timeout_graceful_shutdown=3,
            log_config=None,
        )
        from graphrun.heap import freeze_startup_heap

        freeze_startup_heap()
        log.info("graphrun serving on http://%s:%s", settings.host, settings.port)
        # uvicorn re-raises the Ctrl-C it handled; stopping was asked for, so exit 0.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run()
        return 0
    finally:
        if workers is not None:
            if workers.poll() is None:
                workers.send_signal(signal.SIGTERM)
            try:
                workers.wait(30)
            except subprocess.TimeoutExpired:
                workers.kill()
        if embedded is not None:
            embedded.stop()
