"""``graphrun run WORKFLOW --input JSON``: submit, print events live, Ctrl-C cancels."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from datetime import datetime
from typing import Any, ClassVar, TextIO

from graphrun.cli import ports
from graphrun.client import ClientError, GraphrunClient, StreamEvent
from graphrun.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130  # EXIT_USAGE: graphrun.cli.main


class Printer:
    """One readable line per event; colour only on a terminal."""

    COLOURS: ClassVar[dict[str, str]] = {
        "start": "36",
        "node_start": "2",
        "node_end": "32",
        "message": "0",
        "custom": "35",
        "complete": "1;32",
        "error": "1;31",
        "cancelled": "1;33",
        "timeout": "1;33",
        "truncated": "33",
        "resumed": "36",
    }

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.colour = out.isatty()
        self.in_message = False

    def _paint(self, kind: str, text: str) -> str:
        return f"\033[{self.COLOURS.get(kind, '0')}m{text}\033[0m" if self.colour else text

    def line(self, text: str) -> None:
        if self.in_message:
            self.out.write("\n")
            self.in_message = False
        self.out.write(text + "\n")
        self.out.flush()

    def event(self, ev: StreamEvent) -> None:
        data = ev.json()
        stamp = datetime.fromtimestamp(data.get("ts", time.time())).strftime("%H:%M:%S.%f")[:-3]
        ns = "/".join(data.get("namespace") or [])
        node = f"{ns}/{data['node']}" if ns and data.get("node") else (data.get("node") or "")
        kind = ev.event
        if kind == "message":
            content = data.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            if not self.in_message:
                self.out.write(f"{stamp}  {self._paint(kind, 'message')}     {node}: ")
                self.in_message = True
            self.out.write(text)
            self.out.flush()
            return
        detail = _describe(kind, data, node)
        self.line(f"{stamp}  {self._paint(kind, f'{kind:<10}')}  {detail}".rstrip())


def _describe(kind: str, data: dict[str, Any], node: str) -> str:
    error = data.get("error") or {}
    match kind:
        case "start":
            return f"workflow {data.get('workflow_id')} v{data.get('workflow_version')}, attempt {data.get('attempt')}"
        case "node_start":
            return f"▸ {node}"
        case "node_end":
            return f"✓ {node}  {_short(data.get('output'))}"
        case "custom":
            return f"{node}  {_short(data.get('data'))}"
        case "resumed":
            return f"attempt {data.get('attempt')}"
        case "truncated":
            return f"{data.get('missed')} event(s) were trimmed from the log before they could be read"
        case "complete":
            return _short(data.get("output"), 2000)
        case "error":
            return f"{error.get('type')}: {error.get('message')}"
        case "cancelled":
            return ""
        case "timeout":
            return f"time limit of {data.get('timeout_s')} s reached"
    return _short(data)


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _resolve(client: GraphrunClient, ref: str, out: TextIO) -> dict[str, Any]:
    if ref.isdigit():
        return await client.get_workflow(int(ref))
    found = await client.find_workflow(ref)
    if found is not None:
        return found
    graphs = {g["name"] for g in await client.graphs()}
    if ref in graphs:
        created = await client.create_workflow(ref, ref, {})
        print(f"created workflow {created['id']} {ref!r} (graph {ref}, default config)", file=sys.stderr)
        return created
    raise ClientError(
        404,
        f"no workflow with id or name {ref!r}, and no graph of that name "
        f"(registered graphs: {', '.join(sorted(graphs))})",
    )


def api_url(settings: Settings, args: argparse.Namespace) -> str:
    return str(args.url or ports.url(settings.host, settings.port))


async def run(settings: Settings, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Errors (API unreachable, refused, unknown workflow) propagate: graphrun.cli.main words them."""
    api_key = args.api_key or settings.api_key or (settings.api_keys[0] if settings.api_keys else None)
    printer = Printer(out)
    async with GraphrunClient(api_url(settings, args), api_key=api_key) as client:
        workflow = await _resolve(client, args.workflow, out)
        submitted = await client.submit(workflow["id"], args.input, timeout_s=args.timeout)
        execution_id = submitted["execution_id"]
        if not args.json:
            version = submitted["workflow_version"]
            printer.line(f"execution {execution_id}  (workflow {workflow['id']} {workflow['name']!r} v{version})")

        loop = asyncio.get_running_loop()
        follow_task = asyncio.current_task()
        interrupted = False
        pending: set[asyncio.Task[Any]] = set()

        def on_interrupt() -> None:
            nonlocal interrupted
            if interrupted and follow_task is not None:
                follow_task.cancel()  # second Ctrl-C: stop waiting
                return
            interrupted = True
            print("\ncancelling… (Ctrl-C again to stop waiting)", file=sys.stderr)
            task = loop.create_task(client.cancel(execution_id))
            pending.add(task)
            task.add_done_callback(pending.discard)

        loop.add_signal_handler(signal.SIGINT, on_interrupt)
        last = "error"
        try:
            async for event in client.events(execution_id, max_reconnects=20):
                if args.json:
                    out.write(json.dumps({"id": event.id, "event": event.event, "data": event.json()}) + "\n")
                    out.flush()
                else:
                    printer.event(event)
                last = event.event
        except asyncio.CancelledError:
            return EXIT_CANCELLED
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        if last == "complete":
            return EXIT_OK
        return EXIT_CANCELLED if last == "cancelled" else EXIT_FAILED
