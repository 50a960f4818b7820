"""``graphrun run`` at an interrupt: show each pending question, read the answers from the terminal.

What must stay true:
- reading never blocks the event loop nor a thread (the loop watches standard input), so Ctrl-C at
  the question is handled at once and nothing is left waiting for a line when the command exits;
- an answer is JSON when it parses as JSON, else the line as typed (without its line end);
- one pending interrupt is resumed with its answer; several with a map from interrupt id to answer,
  as LangGraph's ``Command(resume=...)`` takes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any, TextIO


class NoAnswerError(Exception):
    """Standard input ended before an answer."""


# What was read past a line's end, per file descriptor (piped input may bring several lines at once).
_LEFT: dict[int, bytearray] = {}


def question_of(value: Any) -> str:
    """What to show for an interrupt's value: its ``question`` (or ``description``, agent-chat-ui's)
    when it has one, a string as it is, anything else as indented JSON."""
    if isinstance(value, dict):
        for key in ("question", "description", "prompt", "message"):
            if isinstance(value.get(key), str) and value[key]:
                choices = value.get("choices")
                shown = " / ".join(str(c) for c in choices) if isinstance(choices, list) and choices else ""
                return str(value[key]) + (f" [{shown}]" if shown else "")
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def parse_answer(line: str) -> Any:
    text = line.rstrip("\r\n")
    try:
        return json.loads(text)
    except ValueError:
        return text


async def read_line(stdin: TextIO = sys.stdin) -> str:
    """One line from standard input, read as the loop sees it arrive; NoAnswerError at its end."""
    loop = asyncio.get_running_loop()
    fd = stdin.fileno()
    got: asyncio.Future[str] = loop.create_future()
    buffer = _LEFT.setdefault(fd, bytearray())

    def take_line() -> bool:
        if b"\n" not in buffer or got.done():
            return False
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        got.set_result(line.decode("utf-8", "replace"))
        return True

    def readable() -> None:
        chunk = os.read(fd, 4096)
        if not chunk:
            if not got.done():
                got.set_exception(NoAnswerError("standard input ended before an answer"))
            return
        buffer.extend(chunk)
        take_line()

    if take_line():
        return await got
    try:
        loop.add_reader(fd, readable)
    except PermissionError:  # a regular file (or /dev/null) cannot be watched, and never blocks
        while not got.done():
            readable()
        return await got
    try:
        return await got
    finally:
        loop.remove_reader(fd)


async def ask(interrupts: list[dict[str, Any]], out: TextIO, stdin: TextIO = sys.stdin) -> Any:
    """Ask every pending interrupt's question; the resume value."""
    answers: dict[str, Any] = {}
    for pending in interrupts:
        out.write(f"\n? {question_of(pending.get('value'))}\n> ")
        out.flush()
        answers[str(pending.get("id"))] = parse_answer(await read_line(stdin))
    if len(answers) == 1:
        return next(iter(answers.values()))
    return answers
