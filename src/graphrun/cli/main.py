"""``graphrun serve | api | worker | run``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from graphrun import __version__
from graphrun.errors import GraphrunError
from graphrun.settings import Settings, load_settings


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphrun", description="Run LangGraph workflows in the background.")
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
    run.add_argument("--json", action="store_true", help="print raw events as JSON lines")
    return parser


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
        stream=sys.stderr,
    )


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    for arg, field in (("host", "host"), ("port", "port")):
        if getattr(args, arg, None) is not None:
            overrides[field] = getattr(args, arg)
    try:
        if args.command == "serve" and args.workers:
            overrides["worker_processes"] = args.workers
        if args.command == "api" and args.workers:
            overrides["api_workers"] = args.workers
        if args.command == "worker":
            if args.processes:
                overrides["worker_processes"] = args.processes
            if args.concurrency:
                overrides["worker_concurrency"] = args.concurrency
        settings = load_settings(**overrides)
        if args.command != "run":
            _configure_logging(settings)
        if args.command in ("serve", "api"):
            share_metrics(settings, args.command, settings.port)
        if args.command == "worker" and settings.worker_metrics_port:
            from graphrun.cli.worker import check_metrics_port

            check_metrics_port(settings)
            share_metrics(settings, args.command, settings.worker_metrics_port)
        if args.command == "serve":
            from graphrun.cli.serve import serve

            return serve(settings)
        if args.command == "api":
            from graphrun.cli.api import run_api

            return run_api(settings)
        if args.command == "worker":
            from graphrun.cli.worker import run_workers

            return run_workers(settings)
        from graphrun.cli.run import run

        return asyncio.run(run(settings, args))
    except GraphrunError as exc:
        print(f"graphrun: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
