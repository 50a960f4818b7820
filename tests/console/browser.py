"""What the console's browser tests share: Debian's Chromium driven by Playwright, `graphrun serve` as a
subprocess, and screenshots for the docs.

Playwright's own browser builds are never downloaded: the tests launch /usr/bin/chromium, and skip,
saying why, where it is missing. They run under `make test-browser` (GRAPHRUN_BROWSER_TESTS=1), so
`make test` does not run them a second time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from graphrun.redis.embedded import free_port

CHROMIUM = Path("/usr/bin/chromium")
# Chromium's own background traffic (updates, sync, field trials) is off: the tests reach only the
# server on 127.0.0.1.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_KEY = "console-test-key"  # the keyed server's one key
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: `apt-get install chromium` (CI's .ci/run does)"
    if not os.environ.get("GRAPHRUN_BROWSER_TESTS"):
        return "the console's browser tests run under `make test-browser` (GRAPHRUN_BROWSER_TESTS=1)"
    return None


@contextmanager
def serve(tmp: Path, **env: str) -> Iterator[str]:
    """`graphrun serve` with the example graphs, on a free port; yields its URL."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    full.update(GRAPHRUN_PORT=str(port), GRAPHRUN_DATA_DIR=str(tmp / "data"), GRAPHRUN_LOG_LEVEL="WARNING", **env)
    full["GRAPHRUN_WORKER_METRICS_PORT"] = str(port)  # leave the workers' metrics port alone (see test_serve_e2e)
    log_path = tmp / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "graphrun", "serve"], cwd=tmp, env=full, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        headers = {"X-Api-Key": env["GRAPHRUN_API_KEYS"].split(",")[0]} if "GRAPHRUN_API_KEYS" in env else {}
        deadline = time.monotonic() + 90
        try:
            while True:
                try:
                    if httpx.get(f"{url}/readyz", headers=headers, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "graphrun serve did not become ready in 90 s"
                time.sleep(0.3)
            yield url
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def screenshot(page: object, name: str) -> None:
    """docs/images/console-<name>.png, when GRAPHRUN_SCREENSHOTS=1 (the README shows them)."""
    if os.environ.get("GRAPHRUN_SCREENSHOTS") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / f"console-{name}.png"))  # type: ignore[attr-defined]


def wait_for(check: object, timeout_s: float = 10.0, every_s: float = 0.05) -> object:
    """Polls ``check()`` until it returns something truthy; fails with its last answer otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()  # type: ignore[operator]
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s; last: {value!r}"
        time.sleep(every_s)
