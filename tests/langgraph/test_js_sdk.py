"""The official JS client, `@langchain/langgraph-sdk` (pinned by tests/js/package-lock.json, installed by
`make js-install`), holds one conversation with `graphrun serve` started from a langgraph.json folder:
tests/js/conversation.mjs streams two turns on a thread, leaves a third part-way and rejoins it with
`runs.joinStream(..., { lastEventId })`, and prints what it checked as JSON.

The folder is tests/js/project: its chat model streams a token every 20 ms, so that the third turn is
still running when the client rejoins it. The same script runs against LangGraph's own `langgraph dev`
(marker ``reference``) to show that it asks nothing of graphrun that LangGraph's server does not give."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from graphrun.redis.embedded import free_port
from tests.helpers import scaled

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "tests" / "js"
PROJECT = JS / "project"
NODE = shutil.which("node")
REFERENCE_VENV = Path(os.environ.get("GRAPHRUN_TEST_REFERENCE_VENV", ROOT / "bench" / ".peer-venv"))


def _node_major() -> int:
    assert NODE is not None
    out = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.strip().lstrip("v").split(".")[0])


pytestmark = [
    pytest.mark.skipif(NODE is None or shutil.which("npm") is None, reason="node/npm not found: no JS client test"),
    pytest.mark.skipif(NODE is not None and _node_major() < 20, reason="the JS LangGraph SDK needs Node.js 20+"),
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPHRUN_", "LANGGRAPH_", "LANGSMITH_"))}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


@contextlib.contextmanager
def _server(args: list[str], env: dict[str, str], cwd: Path, log_path: Path, url_of: Any, probe: str) -> Iterator[str]:
    """Start a server in a session of its own, wait until ``url_of(log)`` names a URL whose ``probe``
    path answers 200, yield it; stop it with SIGINT, then kill its whole group if it lingers."""
    log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + scaled(60)
        while True:
            assert proc.poll() is None, f"{args[0]} exited:\n{log_path.read_text(errors='replace')[-4000:]}"
            url = url_of(log_path.read_text(errors="replace"))
            with contextlib.suppress(httpx.TransportError):
                if url and httpx.get(f"{url}{probe}", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"{args[0]} not up:\n{log_path.read_text(errors='replace')[-4000:]}"
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(scaled(15))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(scaled(10))
        log.close()


def _project(tmp: Path) -> Path:
    """A copy of the project: `langgraph dev` keeps its state in the folder it runs in."""
    return Path(shutil.copytree(PROJECT, tmp / "project", ignore=shutil.ignore_patterns("__pycache__")))


@contextlib.contextmanager
def graphrun_serve(tmp: Path) -> Iterator[str]:
    port = free_port()
    env = _env(
        GRAPHRUN_PORT=str(port),
        GRAPHRUN_DATA_DIR=str(tmp / "data"),
        GRAPHRUN_LOG_LEVEL="WARNING",
        # Not the API's port: serve's worker must leave it alone.
        GRAPHRUN_WORKER_METRICS_PORT=str(port),
    )
    args = [sys.executable, "-m", "graphrun", "serve"]
    url_of = lambda _log: f"http://127.0.0.1:{port}"  # noqa: E731
    with _server(args, env, _project(tmp), tmp / "serve.log", url_of, "/readyz") as url:
        yield url


_API_LINE = re.compile(r"API:\s*(?:\x1b\[[0-9;]*m)*(http://[0-9.]+:\d+)")


@contextlib.contextmanager
def langgraph_dev(tmp: Path) -> Iterator[str]:
    cli = REFERENCE_VENV / "bin" / "langgraph"
    if not cli.exists():
        pytest.skip(f"no langgraph-cli in {REFERENCE_VENV} (set GRAPHRUN_TEST_REFERENCE_VENV)")
    env = _env(LANGGRAPH_CLI_NO_ANALYTICS="1", LANGSMITH_TRACING="false")
    args = [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(free_port())]

    # It moves to another port when the one asked for is taken: its "API:" line says where it listens.
    def url_of(log: str) -> str | None:
        found = _API_LINE.search(log)
        return found.group(1) if found else None

    with _server(args, env, _project(tmp), tmp / "langgraph-dev.log", url_of, "/ok") as url:
        yield url


def conversation(url: str, *flags: str) -> tuple[int, dict[str, Any]]:
    """Run tests/js/conversation.mjs against ``url``: its exit status and its JSON summary."""
    if not (JS / "node_modules" / ".installed").exists():
        pytest.fail("the JS SDK is not installed: run make js-install")
    assert NODE is not None
    limit_s = scaled(60)
    done = subprocess.run(
        [NODE, str(JS / "conversation.mjs"), *flags, url, "chat"],
        env=_env(GRAPHRUN_JS_TEST_TIMEOUT_MS=str(int(limit_s * 1000))),
        capture_output=True,
        text=True,
        timeout=limit_s + 30,
        check=False,
    )
    try:
        summary = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"conversation.mjs exited {done.returncode} with no summary:\n{done.stdout}\n{done.stderr}")
    return done.returncode, summary


def _failures(summary: dict[str, Any]) -> str:
    found = {key: summary.get(key) for key in ("step", "error", "rejoin")}
    found["failed"] = [c for c in summary["checks"] if c["name"] in summary["failed"]]
    return json.dumps(found, indent=1)[:6000]


def _assert_conversation(status: int, summary: dict[str, Any]) -> None:
    assert status == 0 and summary["ok"], _failures(summary)
    assert [t["reply"] for t in summary["turns"]] == ["turn 1: you said hello there", "turn 2: you said how are you"]
    assert summary["state_messages"] == 6
    assert summary["rejoin"]["events_rejoined"] > 0, summary["rejoin"]


def test_js_sdk_streams_and_rejoins_a_conversation(tmp_path: Path) -> None:
    with graphrun_serve(tmp_path) as url:
        status, summary = conversation(url)
    # Without --reference every check counts, the ones LangGraph's own server does not pass too.
    _assert_conversation(status, summary)


@pytest.mark.reference
def test_js_sdk_conversation_against_langgraph_dev(tmp_path: Path) -> None:
    with langgraph_dev(tmp_path) as url:
        status, summary = conversation(url, "--reference")
    _assert_conversation(status, summary)
