"""``graphrun serve | api | worker | run``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import traceback
from typing import Any, NoReturn

from graphrun import __version__
from graphrun.errors import BackendUnavailableError, ConfigError, GraphrunError
from graphrun.settings import Settings, load_settings

EXIT_FAILED, EXIT_USAGE = 1, 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0–65535, got {value}")
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg} at position {exc.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"n\": 0}}', got {type(value).__name__}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, like every other failure, instead of the usage block then the error."""
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphrun", description="Run LangGraph workflows in the background.")
    parser.add_argument("--version", action="version", version=f"graphrun {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def listen_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="listen address (GRAPHRUN_HOST)")
        p.add_argument("--port", type=_port, help="listen port (GRAPHRUN_PORT)")

    serve = sub.add_parser("serve", help="API, workers, embedded Redis and SQLite on this machine")
    listen_args(serve)
    serve.add_argument("--workers", type=_positive_int, help="worker processes (GRAPHRUN_WORKER_PROCESSES)")

    api = sub.add_parser("api", help="the API alone, under Gunicorn with Uvicorn workers")
    listen_args(api)
    api.add_argument("--workers", type=_positive_int, help="Gunicorn worker processes (GRAPHRUN_API_WORKERS)")

    worker = sub.add_parser("worker", help="task worker processes alone (TaskIQ)")
    worker.add_argument("--processes", type=_positive_int, help="processes (GRAPHRUN_WORKER_PROCESSES)")
    worker.add_argument("--concurrency", type=_positive_int, help="executions at once per process")

    run = sub.add_parser("run", help="submit an execution and print its events live; Ctrl-C cancels it")
    run.add_argument("workflow", help="workflow id or name (a registered graph name creates a workflow)")
    run.add_argument("--input", type=_json_object, default={}, help="input as a JSON object")
    run.add_argument("--timeout", type=_positive_float, help="time limit in seconds")
    run.add_argument("--url", help="API base URL (default http://GRAPHRUN_HOST:GRAPHRUN_PORT)")
    run.add_argument("--api-key", help="API key (default: GRAPHRUN_API_KEY, else the first of GRAPHRUN_API_KEYS)")
    run.add_argument(
        "--json",
        action="store_true",
        help="print raw events as JSON lines; at an interrupt, exit with status 3 without asking",
    )
    return parser


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
        stream=sys.stderr,
    )
    if logging.getLevelName(settings.log_level) > logging.DEBUG:
        # Their INFO lines are start-up chatter (Alembic's plugin list and migration steps, Uvicorn's
        # banner); graphrun says once per process where it listens instead. Their warnings and
        # errors still show, and GRAPHRUN_LOG_LEVEL=DEBUG shows everything.
        for name in ("alembic", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.WARNING)


def share_metrics(settings: Settings, name: str, port: int) -> None:
    """Let every process this command starts on this machine report through one /metrics.

    Must run before any metric is created (prometheus_client reads the variable at import), so
    only the CLI, the composition root, sets it; child processes inherit it.
    """
    import os
    import shutil

    MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # not imported from graphrun.metrics: importing it creates the metrics

    if os.environ.get(MULTIPROC_ENV):
        return  # a parent (serve) already set it up
    folder = (settings.data_dir / f"metrics-{name}-{port}").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for arg, field in (("host", "host"), ("port", "port")):
        if getattr(args, arg, None) is not None:
            overrides[field] = getattr(args, arg)
    if args.command == "serve" and args.workers:
        overrides["worker_processes"] = args.workers
    if args.command == "api" and args.workers:
        overrides["api_workers"] = args.workers
    if args.command == "worker":
        if args.processes:
            overrides["worker_processes"] = args.processes
        if args.concurrency:
            overrides["worker_concurrency"] = args.concurrency
    return overrides


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from graphrun.cli.run import run

        return asyncio.run(run(settings, args))
    _configure_logging(settings)
    if args.command == "serve":
        from graphrun.cli import ports
        from graphrun.cli.datadir import lock_data_dir
        from graphrun.cli.serve import serve

        # First of all: a second serve on this directory must not touch it (not even the metrics
        # folder below), and must refuse naming the first.
        lock = lock_data_dir(settings.data_dir, ports.url(settings.host, settings.port))
        share_metrics(settings, args.command, settings.port)
        return serve(settings, lock)
    if settings.redis_url is not None:
        check_redis(settings.redis_url, settings.startup_wait_s)
    if args.command == "api":
        from graphrun.cli.api import run_api

        share_metrics(settings, args.command, settings.port)
        return run_api(settings)
    from graphrun.cli.worker import check_metrics_port, run_workers

    if settings.worker_metrics_port:
        check_metrics_port(settings)
        share_metrics(settings, args.command, settings.worker_metrics_port)
    return run_workers(settings)


def check_redis(url: str, wait_s: float) -> None:
    """Fail at start-up, in one line, when Redis cannot be reached (once running, graphrun rides
    out Redis outages), after ``wait_s`` of grace for a Redis started at the same moment."""
    import time

    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                client.ping()
                return
            except redis.AuthenticationError as exc:
                raise ConfigError(
                    f"Redis at {_safe_url(url)} refused the password ({exc}); fix GRAPHRUN_REDIS_URL"
                ) from None
            except redis.RedisError as exc:
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"cannot reach Redis at {_safe_url(url)} ({exc}); is it running? check GRAPHRUN_REDIS_URL"
                    ) from None
                time.sleep(0.5)
    finally:
        client.close()


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


def _one_line(text: str) -> str:
    """Driver errors (psycopg through SQLAlchemy) span lines and end with a link to SQLAlchemy's docs."""
    import re

    text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def describe(exc: BaseException, args: argparse.Namespace, settings: Settings | None) -> tuple[str, int]:
    """Every failure of every command, as one line saying what to do, and its exit status."""
    import httpx

    from graphrun.client import ClientError

    if isinstance(exc, BackendUnavailableError):
        setting = "GRAPHRUN_DATABASE_URL" if exc.backend == "database" else "GRAPHRUN_REDIS_URL"
        return f"{_one_line(str(exc))}; check {setting}", EXIT_USAGE
    if isinstance(exc, GraphrunError):
        return _one_line(str(exc)), EXIT_USAGE
    if isinstance(exc, ClientError):
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status == 401:
            return f"the API refused the API key ({detail}); set --api-key or GRAPHRUN_API_KEY", EXIT_USAGE
        if exc.status in (400, 404, 409, 413, 422):
            return detail, EXIT_USAGE
        return f"the API answered HTTP {exc.status}: {detail}", EXIT_FAILED
    if isinstance(exc, httpx.TransportError | OSError) and args.command == "run" and settings is not None:
        from graphrun.cli.run import api_url

        return (
            f"cannot reach the API at {api_url(settings, args)} ({exc or type(exc).__name__}); "
            "is `graphrun serve` running? (set --url, or GRAPHRUN_HOST and GRAPHRUN_PORT)",
            EXIT_FAILED,
        )
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), EXIT_FAILED
    return (
        f"unexpected error: {type(exc).__name__}: {exc} (GRAPHRUN_LOG_LEVEL=DEBUG shows the traceback)",
        EXIT_FAILED,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_settings(**_overrides(args))
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 -- the one place where a failure becomes what the user reads
        line, status = describe(exc, args, settings)
        print(f"graphrun: {line}", file=sys.stderr)
        if settings is not None and settings.log_level == "DEBUG":
            traceback.print_exception(exc)
        return status
