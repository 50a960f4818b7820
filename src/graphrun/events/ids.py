"""Stream ids, compared as (milliseconds, sequence) and never as strings."""

from __future__ import annotations

import re
from typing import NamedTuple

from graphrun.errors import BadEventIdError

_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
_U64 = 2**64


class StreamId(NamedTuple):
    """A Redis stream id. graphrun writes ``<ms>-<seq>`` where ``seq`` is the event's ordinal in
    its execution's log (0 for ``start``), so any id also says how many events came before it."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, raw: str | bytes) -> StreamId:
        text = raw.decode() if isinstance(raw, bytes) else raw
        m = _ID.match(text.strip())
        if not m or int(m[1]) >= _U64 or int(m[2]) >= _U64:
            raise BadEventIdError(f"malformed event id {text!r}: expected '<milliseconds>-<sequence>'")
        return cls(int(m[1]), int(m[2]))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


ZERO = StreamId(0, 0)
