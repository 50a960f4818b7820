"""``graphrun run WORKFLOW --input JSON``: submit, print events live, Ctrl-C cancels; at an interrupt,
ask the question on the terminal and follow the resumed execution (cli/ask.py)."""

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
from graphrun.cli.ask import NoAnswerError, ask
from graphrun.client import ClientError, GraphrunClient, StreamEvent
from graphrun.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130  # EXIT_USAGE: graphrun.cli.main
# ``--json`` (or no answer on standard input) at an interrupt: the execution waits for its resume.
EXIT_INTERRUPTED = 3


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
        "interrupt": "1;35",
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
        case "interrupt":
            return f"waiting for an answer ({len(data.get('interrupts') or [])} question(s))"
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
        return await _Follower(client, printer, out, as_json=args.json).run(execution_id)


class _CancelledAtQuestion(Exception):
    pass


class _Follower:
    """Follows an execution to its end, and at an interrupt asks, resumes and follows the new one;
    Ctrl-C cancels whichever execution is current (a second one stops waiting)."""

    def __init__(self, client: GraphrunClient, printer: Printer, out: TextIO, *, as_json: bool) -> None:
        self.client = client
        self.printer = printer
        self.out = out
        self.as_json = as_json
        self.current = ""
        self.cancelling = False
        self.asking: asyncio.Future[Any] | None = None
        self.pending: set[asyncio.Task[Any]] = set()

    def _on_sigint(self, follow_task: asyncio.Task[Any] | None) -> None:
        if self.asking is not None and not self.asking.done():
            self.asking.cancel()  # the question is withdrawn: _ask says so
            return
        if self.cancelling and follow_task is not None:
            follow_task.cancel()  # second Ctrl-C: stop waiting
            return
        self.cancelling = True
        print("\ncancelling… (Ctrl-C again to stop waiting)", file=sys.stderr)
        task = asyncio.get_running_loop().create_task(self.client.cancel(self.current))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def run(self, execution_id: str) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._on_sigint, asyncio.current_task())
        self.current = execution_id
        try:
            while True:
                last = await self._follow()
                if last is None or last.event != "interrupt":
                    break
                if self.as_json:
                    return EXIT_INTERRUPTED  # the event is printed; answering is the caller's part
                if self.cancelling:
                    break  # Ctrl-C came as it stopped: the cancel makes it cancelled
                try:
                    answer = await self._ask(last.json().get("interrupts") or [])
                except _CancelledAtQuestion:
                    await self.client.cancel(self.current)
                    print(f"\ngraphrun: cancelled execution {self.current} at its question", file=sys.stderr)
                    return EXIT_CANCELLED
                except NoAnswerError:
                    print(
                        f"\ngraphrun: no answer (standard input ended); execution {self.current} stays interrupted: "
                        f"POST /executions/{self.current}/resume answers it",
                        file=sys.stderr,
                    )
                    return EXIT_INTERRUPTED
                resumed = await self.client.resume(self.current, answer)
                self.current = resumed["execution_id"]
                self.printer.line(f"resumed as execution {self.current}")
        except asyncio.CancelledError:
            return EXIT_CANCELLED
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        kind = last.event if last is not None else "error"
        if kind == "complete":
            return EXIT_OK
        return EXIT_CANCELLED if kind in ("cancelled", "interrupt") else EXIT_FAILED

    async def _follow(self) -> StreamEvent | None:
        """Print the current execution's events; its terminal event."""
        last: StreamEvent | None = None
        async for event in self.client.events(self.current, max_reconnects=20):
            if self.as_json:
                self.out.write(json.dumps({"id": event.id, "event": event.event, "data": event.json()}) + "\n")
                self.out.flush()
            else:
                self.printer.event(event)
            last = event
        return last

    async def _ask(self, interrupts: list[dict[str, Any]]) -> Any:
        self.asking = asking = asyncio.ensure_future(ask(interrupts, self.out))
        try:
            return await asking
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if asking.cancelled() and (current is None or not current.cancelling()):
                raise _CancelledAtQuestion from None  # Ctrl-C at the question
            raise
        finally:
            self.asking = None
