"""The package's layout rules, read from the source: which room may import which, no import cycles,
no module over 400 lines. A change that breaks the architecture fails here, not in review."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "graphrun"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    # A package's own __init__ counts as the package: one level up is its parent.
    package = base if _modules()[module].name == "__init__.py" else base[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, node.module] if node.module else package)


def _imports(module: str, path: Path, *, top_level_only: bool) -> Iterator[str]:
    """graphrun modules that ``module`` imports (``from a import b`` yields ``a.b`` when that is a
    module). Imports under ``if TYPE_CHECKING:`` are not imports at run time."""
    tree = ast.parse(path.read_text())
    known = _modules()

    def walk(nodes: list[ast.stmt], nested: bool) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                if not (nested and top_level_only):
                    yield from (a.name for a in node.names if a.name.startswith("graphrun"))
            elif isinstance(node, ast.ImportFrom) and not (nested and top_level_only):
                target = _resolve(module, node)
                if target.startswith("graphrun"):
                    for alias in node.names:
                        sub = f"{target}.{alias.name}"
                        yield sub if sub in known else target
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    inner = nested or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                    yield from walk([child], inner)

    yield from walk(tree.body, False)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _edges(*, top_level_only: bool) -> dict[str, set[str]]:
    known = _modules()
    edges: dict[str, set[str]] = {}
    for module, path in known.items():
        targets = set(_imports(module, path, top_level_only=top_level_only))
        # Importing a package's module runs the package's __init__ first: an edge to it as well.
        for target in list(targets):
            parts = target.split(".")
            targets.update(".".join(parts[:i]) for i in range(2, len(parts)) if ".".join(parts[:i]) in known)
        # A module's own parent packages are already being imported when it runs.
        own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
        edges[module] = targets - own
    return edges


def test_the_layout_is_read() -> None:
    # Guards the checks below against passing because they read nothing.
    edges = _edges(top_level_only=False)
    assert "graphrun.worker.runner" in edges
    assert "graphrun.store.base" in edges["graphrun.worker.runner"]
    assert "graphrun.redis.keys" in edges["graphrun.events.log"]


def test_no_module_is_over_400_lines() -> None:
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_cycles() -> None:
    edges = _edges(top_level_only=True)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


# Which rooms each room may import at all (run time, anywhere in the module). "" is the root modules.
_FORBIDDEN: dict[str, set[str]] = {
    "api": {"worker", "cli"},
    "worker": {"api", "cli"},
    "store": {"api", "worker", "cli", "events", "cache", "checkpoint", "redis", "langgraph"},
    "events": {"api", "worker", "cli", "cache", "checkpoint", "langgraph"},
    "redis": {"api", "worker", "cli", "events", "store", "cache", "checkpoint", "langgraph"},
}


@pytest.mark.parametrize("room", sorted(_FORBIDDEN))
def test_rooms_import_only_what_is_below_them(room: str) -> None:
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in _edges(top_level_only=False).items()
        if _room(m) == room
        for t in targets
        if _room(t) in _FORBIDDEN[room]
    )
    assert not bad, f"{room} imports above itself: {bad}"


def test_only_the_cli_imports_the_cli() -> None:
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in _edges(top_level_only=False).items()
        if _room(m) != "cli" and m != "graphrun.__main__"
        for t in targets
        if _room(t) == "cli"
    )
    assert not bad


def test_the_engine_does_not_import_the_examples() -> None:
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in _edges(top_level_only=False).items()
        if _room(m) != "examples"
        for t in targets
        if _room(t) == "examples"
    )
    assert not bad


def test_the_worker_takes_only_formats_from_the_langgraph_room() -> None:
    allowed = {"graphrun.langgraph", "graphrun.langgraph.translate", "graphrun.langgraph.serde"}
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in _edges(top_level_only=False).items()
        if _room(m) == "worker"
        for t in targets
        if _room(t) == "langgraph" and t not in allowed
    )
    assert not bad


def test_stream_translators_stay_pure() -> None:
    """The translators are pure (no I/O): the worker imports them, and so may a test with no server."""
    for module in ("graphrun.worker.translate", "graphrun.langgraph.translate", "graphrun.langgraph.serde"):
        path = _modules().get(module)
        if path is None:
            continue
        text = path.read_text()
        for word in ("fastapi", "starlette", "redis", "sqlalchemy", "graphrun.api", "graphrun.store.sql"):
            assert f"import {word}" not in text and f"from {word}" not in text, f"{module} imports {word}"
