"""The graph registry: which graphs this server can build, by name.

Names map to code, from the built-in examples and the configuration file (``graphrun.toml`` or
``langgraph.json``: graphrun.projects parses both). Only the operator's configuration names modules or
files; an API caller can only pick a registered name.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import inspect
import logging
import math
import re
import sys
import threading
from pathlib import Path
from typing import Any

from graphrun.errors import FactoryError, UnknownGraphError
from graphrun.projects import GraphSpec, Project, load_project

__all__ = ["BUILTINS", "GraphRegistry", "GraphSpec", "config_timeout_s", "factory_config"]

log = logging.getLogger("graphrun.registry")

BUILTINS: dict[str, str] = {
    "chain": "graphrun.examples.chain:build",
    "kb_search": "graphrun.examples.kb:build_search",
    "kb_agent": "graphrun.examples.kb:build_agent",
    "chat": "graphrun.examples.chat:build",
    "approval": "graphrun.examples.approval:build",
}


# Workflow config keys that graphrun reads itself: they never reach a factory or its config_model.
RESERVED_CONFIG_KEYS = frozenset({"timeout_s"})
MAX_TIMEOUT_S = 7 * 24 * 3600  # the same bound as a submit's ``timeout_s``


def factory_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without graphrun's own keys: what the factory (and its config_model) sees."""
    return {k: v for k, v in config.items() if k not in RESERVED_CONFIG_KEYS}


def config_timeout_s(config: dict[str, Any]) -> float | None:
    """The workflow's own time limit (config key ``timeout_s``), None if unset; ValueError if invalid."""
    value = config.get("timeout_s")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("timeout_s must be a number of seconds")
    if not 0 < value <= MAX_TIMEOUT_S:
        raise ValueError(f"timeout_s must be greater than 0 and at most {MAX_TIMEOUT_S}")
    return float(value)


class GraphRegistry:
    """The graphs this process may build: the built-ins plus the configuration's (which win on a
    name clash). Loading a graph's code is lazy (:meth:`preload` does it ahead of time)."""

    def __init__(self, specs: dict[str, GraphSpec], project: Project | None = None) -> None:
        self._specs = dict(sorted(specs.items()))
        self.project = project or Project()
        self._targets: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path | None) -> GraphRegistry:
        """The registry of the configuration file at ``path`` (see graphrun.projects), whose
        dependencies and environment are made active now, before any graph module is imported."""
        project = load_project(path)
        project.activate()
        specs = {name: GraphSpec.from_target(name, target) for name, target in BUILTINS.items()}
        return cls({**specs, **project.graphs}, project)

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str) -> GraphSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownGraphError(name, self.names) from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def factory(self, name: str) -> Any:
        """The object the configuration names: a factory, a ``StateGraph`` or a compiled graph."""
        spec = self.get(name)
        if name not in self._targets:
            try:
                module = _import(spec)
                target = getattr(module, spec.attr)
            except Exception as exc:
                raise FactoryError(f"graph {name!r}: cannot load {spec.target}: {exc!r}") from exc
            if not (callable(target) or _is_graph(target)):
                raise FactoryError(
                    f"graph {name!r}: {spec.target} is {type(target).__name__}, "
                    "not a factory, a StateGraph or a compiled graph"
                )
            self._targets[name] = target
        return self._targets[name]

    def preload(self) -> list[str]:
        """Import every graph's code now (a worker does this at start-up, in a thread), so that no
        first execution pays for imports on the event loop; returns the graphs that failed."""
        failed = []
        for name in self._specs:
            try:
                self.factory(name)
            except FactoryError as exc:
                log.warning("%s", exc)
                failed.append(name)
        return failed

    def describe(self) -> list[dict[str, str | None]]:
        out: list[dict[str, str | None]] = []
        for spec in self._specs.values():
            description = spec.description
            if description is None:
                try:
                    target = self.factory(spec.name)
                    # A graph object's docstring is its class's, not a description of this graph.
                    doc = None if _is_graph(target) else inspect.getdoc(target)
                    description = doc.strip().splitlines()[0] if doc else None
                except FactoryError as exc:
                    description = f"(unavailable: {exc})"
            out.append({"name": spec.name, "description": description})
        return out

    async def build(self, name: str, config: dict[str, Any]) -> Any:
        """The compiled graph of ``name`` for a workflow's ``config``.

        A compiled graph is returned as it is (it was built once, when its module was imported); a
        ``StateGraph`` is compiled; a factory is called (in a thread if it is synchronous: it may be
        slow) with no argument or with the config, whichever its signature asks for, and what it
        returns is compiled if needed. A langgraph.json factory gets a LangGraph ``RunnableConfig``
        (its keys under ``configurable``), a graphrun factory the plain config dict.
        """
        target = self.factory(name)
        spec = self.get(name)
        config = factory_config(config)
        built = target
        if not _is_graph(target):
            args = _factory_args(spec, target, config)
            try:
                if inspect.iscoroutinefunction(target):
                    built = await target(*args)
                else:
                    built = await asyncio.to_thread(target, *args)
                    if inspect.isawaitable(built):
                        built = await built
            except Exception as exc:
                raise FactoryError(f"graph {name!r}: factory raised {type(exc).__name__}: {exc}") from exc
        if hasattr(built, "compile") and not hasattr(built, "astream"):
            try:
                built = built.compile()
            except Exception as exc:
                raise FactoryError(f"graph {name!r}: compiling failed: {type(exc).__name__}: {exc}") from exc
        if not hasattr(built, "astream"):
            raise FactoryError(
                f"graph {name!r}: factory returned {type(built).__name__}, not a StateGraph or compiled graph"
            )
        return built


def _is_graph(value: object) -> bool:
    """A compiled graph or a builder (``StateGraph``): what needs no factory call."""
    return hasattr(value, "astream") or (hasattr(value, "compile") and hasattr(value, "add_node"))


def _factory_args(spec: GraphSpec, fn: Any, config: dict[str, Any]) -> tuple[Any, ...]:
    """What to call a factory with: nothing, or the config (its one required parameter)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return (config,)
    required = [p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(required) > 1 or any("Runtime" in str(p.annotation) for p in required):
        raise FactoryError(
            f"graph {spec.name!r}: {spec.target} must take no argument or one (the config); "
            "a LangGraph ServerRuntime argument is not supported"
        )
    if not required:
        return ()
    if spec.langgraph:
        from langchain_core.runnables.config import ensure_config

        return (ensure_config(config),)  # type: ignore[arg-type]
    return (config,)


# Graph files load in threads (preload) and on the event loop (API validation): one at a time, so that
# a file two graphs name is executed once. (Modules by name have the import system's own locks.)
_file_lock = threading.Lock()


def _import(spec: GraphSpec) -> Any:
    """The module of a spec: by name, or executed from its file (once: two graphs of one file share
    it), under a module name derived from the file so that its classes can be found again."""
    if spec.module is not None:
        return importlib.import_module(spec.module)
    assert spec.path is not None
    with _file_lock:
        return _import_file(spec.path)


def _import_file(path: Path) -> Any:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"graphrun_project__{stem}_{digest}"
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
