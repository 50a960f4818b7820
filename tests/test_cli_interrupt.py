"""`graphrun run approval` in a pseudo-terminal against `graphrun serve`, as a person uses it: the
question appears, the typed answer resumes the run, which completes; Ctrl-C at the question cancels
the execution; ``--json`` prints the interrupt and exits 3 without asking."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_serve_e2e import _env, served  # noqa: F401 - the module's `graphrun serve`

# One xdist worker runs the whole module, so that its `graphrun serve` starts once.
pytestmark = pytest.mark.xdist_group("serve-cli-interrupt")

Served = tuple[str, subprocess.Popen[bytes], Path]
QUESTION = "Approve 'deploy v2'?"


class Terminal:
    """A child process on a pseudo-terminal that is its controlling terminal, so that typing ^C
    sends it SIGINT as a real terminal does."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = os.openpty()

        def controlling_tty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        # (preexec_fn: the only way for a child to take a controlling terminal; no threads run here yet)
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            preexec_fn=controlling_tty,  # noqa: PLW1509
        )
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} did not appear; the terminal shows:\n{self.seen}"
            if select.select([self.master], [], [], min(left, 0.5))[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"the program ended before {text!r}; the terminal shows:\n{self.seen}"
                self.seen += chunk.decode("utf-8", "replace")
        return self.seen

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"the program did not end; the terminal shows:\n{self.seen}"
            if select.select([self.master], [], [], 0.2)[0]:
                with contextlib.suppress(OSError):  # the child closed the terminal
                    self.seen += os.read(self.master, 4096).decode("utf-8", "replace")
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def terminal(served: Served) -> Iterator[Terminal]:  # noqa: F811
    url, _proc, tmp = served
    argv = [sys.executable, "-m", "graphrun", "run", "approval", "--input", '{"request": "deploy v2"}', "--url", url]
    term = Terminal(argv, _env(tmp, 1), tmp)
    yield term
    term.close()


def _executions(url: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = httpx.get(f"{url}/executions", params={"limit": 200}).json()["items"]
    return items


def test_the_typed_answer_resumes_the_run(served: Served, terminal: Terminal) -> None:  # noqa: F811
    terminal.expect(QUESTION)
    terminal.expect("> ")
    terminal.type("approve\n")
    assert terminal.wait() == 0, terminal.seen
    assert "resumed as execution" in terminal.seen
    assert "Approved: deploy v2. Done." in terminal.seen
    resumed_id = terminal.seen.split("resumed as execution ", 1)[1].split()[0]
    row = httpx.get(f"{served[0]}/executions/{resumed_id}").json()
    assert row["status"] == "succeeded" and row["output"]["approved"] is True


def test_ctrl_c_at_the_question_cancels(served: Served, terminal: Terminal) -> None:  # noqa: F811
    terminal.expect(QUESTION)
    first = terminal.seen.split("execution ", 1)[1].split()[0]
    terminal.expect("> ")
    terminal.type("\x03")
    code = terminal.wait()
    assert code == 130, terminal.seen
    assert f"cancelled execution {first} at its question" in terminal.seen
    assert "Traceback" not in terminal.seen
    assert httpx.get(f"{served[0]}/executions/{first}").json()["status"] == "cancelled"


def test_json_mode_prints_the_interrupt_and_exits_3(served: Served) -> None:  # noqa: F811
    url, _proc, tmp = served
    done = subprocess.run(
        [sys.executable, "-m", "graphrun", "run", "approval", "--input", '{"request": "x"}', "--url", url, "--json"],
        env=_env(tmp, 1),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    last = json.loads(done.stdout.splitlines()[-1])
    assert last["event"] == "interrupt"
    (pending,) = last["data"]["interrupts"]
    assert pending["value"]["question"] == "Approve 'x'?"
    row = httpx.get(f"{url}/executions/{last['data']['execution_id']}").json()
    assert row["status"] == "interrupted"


def test_no_answer_leaves_it_interrupted(served: Served) -> None:  # noqa: F811
    url, _proc, tmp = served
    done = subprocess.run(
        [sys.executable, "-m", "graphrun", "run", "approval", "--url", url],
        env=_env(tmp, 1),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "stays interrupted" in done.stderr.strip().splitlines()[-1]
