"""A rough size of an object graph: what a cached compiled graph keeps alive.

Like pympler's asizeof, but bounded and stdlib only: follows references (function closures and
defaults, not module globals), skips modules and classes, counts each object once.
"""

from __future__ import annotations

import gc
import sys
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import Any

MAX_OBJECTS = 500_000


def estimate_size(root: Any, max_objects: int = MAX_OBJECTS) -> int:
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack and len(seen) < max_objects:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, ModuleType, BuiltinFunctionType)):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj, 0)
        if isinstance(obj, FunctionType):
            stack.extend(c.cell_contents for c in obj.__closure__ or () if _filled(c))
            stack.extend(obj.__defaults__ or ())
            continue
        stack.extend(gc.get_referents(obj))
    return total


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True
