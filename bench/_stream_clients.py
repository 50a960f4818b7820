"""The SSE clients of bench/stream.py, run in their own processes so that thousands of connections
do not share the cores' time with the publisher: raw asyncio streams, HTTP/1.1 chunked decoding
and SSE parsing by hand. Each process reports once every client has the `start` event, then again
at the end, one JSON line each time.

    python bench/_stream_clients.py --port P --assignments FILE [--connect-at-once N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._procs import raise_nofile

HOST = "127.0.0.1"
CLIENT_PROCESSES = 2


@dataclass
class ClientStats:
    latencies_ms: list[float] = field(default_factory=list)
    custom: list[int] = field(default_factory=list)  # per client: custom events received
    failed: list[str] = field(default_factory=list)


async def one_client(port: int, execution_id: str, stats: ClientStats, on_start: Any) -> None:
    received = 0
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
        writer.write(
            f"GET /executions/{execution_id}/events HTTP/1.1\r\nHost: {HOST}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"HTTP status {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        raw = bytearray()
        body = ""
        while True:
            data = await reader.read(65536)
            if not data:
                raise RuntimeError("connection closed before complete")
            now = time.time()
            raw += data
            while (eol := raw.find(b"\r\n")) >= 0:  # chunked transfer coding
                size = int(bytes(raw[:eol]).split(b";")[0], 16)
                if len(raw) < eol + 2 + size + 2:
                    break
                body += raw[eol + 2 : eol + 2 + size].decode()
                del raw[: eol + 2 + size + 2]
            while "\n\n" in body:
                frame, body = body.split("\n\n", 1)
                kind = data_line = ""
                for line in frame.split("\n"):
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data_line = line[6:]
                if kind == "start":
                    on_start()
                elif kind == "custom":
                    received += 1
                    stats.latencies_ms.append((now - json.loads(data_line)["ts"]) * 1000)
                elif kind == "complete":
                    stats.custom.append(received)
                    return
    except Exception as exc:
        stats.failed.append(f"{type(exc).__name__}: {exc}")
    finally:
        if writer is not None:
            writer.close()


async def run_clients(port: int, execution_ids: list[str], connect_at_once: int) -> None:
    """Connect every client, report once all of them have the `start` event, then report again at the end."""
    stats = ClientStats()
    ready = asyncio.Event()
    started = 0
    slots = asyncio.Semaphore(connect_at_once)  # connections being set up at once

    async def client(execution_id: str) -> None:
        await slots.acquire()
        holding = True

        def on_start() -> None:
            nonlocal started, holding
            started += 1
            if started == len(execution_ids):
                ready.set()
            holding = False
            slots.release()

        try:
            await one_client(port, execution_id, stats, on_start)
        finally:
            if holding:
                slots.release()

    tasks = [asyncio.create_task(client(e)) for e in execution_ids]
    everything = asyncio.gather(*tasks)
    await asyncio.wait([asyncio.ensure_future(ready.wait()), everything], return_when=asyncio.FIRST_COMPLETED)
    print(json.dumps({"ready": started, "failed": stats.failed[:3]}), flush=True)
    await everything
    print(json.dumps({"latencies_ms": stats.latencies_ms, "custom": stats.custom, "failed": stats.failed}), flush=True)


def client_process(port: int, assignments: Path, connect_at_once: int) -> None:
    execution_ids = json.loads(assignments.read_text())
    try:
        import uvloop

        uvloop.run(run_clients(port, execution_ids, connect_at_once))
    except ImportError:
        asyncio.run(run_clients(port, execution_ids, connect_at_once))


async def spawn_clients(tmp: Path, port: int, ids: list[str], followers: int) -> list[asyncio.subprocess.Process]:
    assignments = [ids[i % len(ids)] for i in range(len(ids) * followers)]
    procs = []
    for k in range(CLIENT_PROCESSES):
        part = tmp / f"clients-{port}-{k}.json"
        part.write_text(json.dumps(assignments[k::CLIENT_PROCESSES]))
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--port",
                str(port),
                "--assignments",
                str(part),
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 26,
            )
        )
    return procs


async def read_report(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if not line:
        raise RuntimeError("a client process ended without reporting")
    report: dict[str, Any] = json.loads(line)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--assignments", type=Path, required=True)
    parser.add_argument("--connect-at-once", type=int, default=100)
    args = parser.parse_args()
    raise_nofile()  # thousands of sockets
    client_process(args.port, args.assignments, args.connect_at_once)


if __name__ == "__main__":
    main()
