"""Store latency on SQLite: p50/p99 in milliseconds of the four store calls every execution makes
(create in the API, claim and finish in the worker, a get in the events endpoint), one at a time,
then the same mix from several concurrent tasks (what one busy API or worker process does).

    .venv/bin/python bench/store.py [--n 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import header, median, pct
from graphrun.store import ExecutionStatus, open_store


async def main(n: int, concurrency: int) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="graphrun-bench-store-"))
    store = await open_store(f"sqlite+aiosqlite:///{tmp / 'bench.db'}")
    clock = time.perf_counter_ns
    samples: dict[str, list[float]] = {op: [] for op in ("create_execution", "get_execution", "claim_execution")}
    samples["finish_execution"] = []
    try:
        wf = await store.create_workflow("w", "chain", {})
        for _ in range(20):  # warm the pool and the statement cache, not measured
            ex = await store.create_execution(wf.id, {"n": 1}, None)
            await store.get_execution(ex.id)
        ids = []
        for _ in range(n):
            t0 = clock()
            ex = await store.create_execution(wf.id, {"n": 1}, None)
            samples["create_execution"].append((clock() - t0) / 1e6)
            ids.append(ex.id)
        for i in ids:
            t0 = clock()
            await store.get_execution(i)
            samples["get_execution"].append((clock() - t0) / 1e6)
        for i in ids:
            t0 = clock()
            await store.claim_execution(i)
            samples["claim_execution"].append((clock() - t0) / 1e6)
        for i in ids:
            t0 = clock()
            await store.finish_execution(i, 1, ExecutionStatus.SUCCEEDED, {"n": 2})
            samples["finish_execution"].append((clock() - t0) / 1e6)

        async def lifecycle() -> None:
            for _ in range(n // concurrency):
                ex = await store.create_execution(wf.id, {"n": 1}, None)
                await store.claim_execution(ex.id)
                await store.get_execution(ex.id)
                await store.finish_execution(ex.id, 1, ExecutionStatus.SUCCEEDED, {"n": 2})

        t0 = time.perf_counter()
        cpu0 = time.process_time()
        await asyncio.gather(*(lifecycle() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        runs = concurrency * (n // concurrency)
    finally:
        await store.close()

    print(header("Store latency", "sqlalchemy") + f"SQLite {sqlite3.sqlite_version}\n")
    print(f"{n} calls each, one at a time:")
    for name, values in samples.items():
        print(f"  {name:18} p50 {median(values):.3f} ms   p99 {pct(values, 99):.3f} ms")
    print(
        f"{runs} lifecycles (create, claim, get, finish) from {concurrency} tasks: "
        f"{runs / wall:.0f}/s, {cpu / runs * 1e3:.2f} ms CPU each"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.n, args.concurrency)))
