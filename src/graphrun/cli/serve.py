"""``graphrun serve``: everything on one machine.

Takes the data directory (one owner: see ``graphrun.cli.datadir``) and the API's port, then starts
the embedded Redis (unless GRAPHRUN_REDIS_URL is set), brings the SQLite schema up to date, starts
the worker processes, and serves the API in this process with Uvicorn. Ctrl-C stops the API, then
the workers, then Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess

import uvicorn

from graphrun.cli import ports
from graphrun.cli.datadir import DataDirLock
from graphrun.cli.worker import worker_command
from graphrun.redis.embedded import EmbeddedRedis, die_with_parent
from graphrun.settings import Settings
from graphrun.store import open_store

log = logging.getLogger("graphrun.serve")


class _Server(uvicorn.Server):
    """Says where the API listens once it really does (Uvicorn's own start-up lines are muted)."""

    def __init__(self, config: uvicorn.Config, address: str) -> None:
        super().__init__(config)
        self.address = address

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            log.info("API listening on %s", self.address)


def serve(settings: Settings, lock: DataDirLock) -> int:
    # Bound before anything starts, so that a taken port fails at once, and passed to Uvicorn
    # (no second bind to lose a race on); with port 0 this is where the real port is known.
    listener = ports.bind(settings.host, settings.port, "--port or GRAPHRUN_PORT")
    address = ports.url(settings.host, listener.getsockname()[1])
    lock.record(address)
    embedded: EmbeddedRedis | None = None
    workers: subprocess.Popen[bytes] | None = None
    try:
        if settings.redis_url is None:
            embedded = EmbeddedRedis(settings.data_dir, pass_fds=(lock.fd,))
            settings = settings.model_copy(update={"redis_url": embedded.start()})
            log.info("embedded Redis listening on 127.0.0.1:%s (data in %s)", embedded.port, settings.data_dir)

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
            pass_fds=(lock.fd,),  # they write in the data directory: it stays owned until they exit
        )

        from graphrun.api import create_app

        config = uvicorn.Config(
            create_app(settings),
            log_level=None,  # a level here would override the CLI's muting of Uvicorn's banner
            access_log=False,
            timeout_graceful_shutdown=3,
            log_config=None,
            # As `graphrun api` (Gunicorn's keepalive): longer than clients keep an idle connection
            # (httpx: 5 s), so that the server never closes one just as a client sends on it, which
            # the client sees as a failed request (seen under the agent bench's 1,000 conversations).
            timeout_keep_alive=75,
        )
        from graphrun.heap import freeze_startup_heap

        freeze_startup_heap()
        # uvicorn re-raises the Ctrl-C it handled; stopping was asked for, so exit 0.
        with contextlib.suppress(KeyboardInterrupt):
            _Server(config, address).run(sockets=[listener])
        return 0
    finally:
        listener.close()
        if workers is not None:
            if workers.poll() is None:
                workers.send_signal(signal.SIGTERM)
            try:
                workers.wait(30)
            except subprocess.TimeoutExpired:
                workers.kill()
        if embedded is not None:
            embedded.stop()
