"""The graph registry: which graphs this server can build, by name.

Names map to ``module:callable`` factories, from the built-in examples and ``graphrun.toml``. Only the
operator's configuration names modules; an API caller can only pick a registered name.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphrun.errors import ConfigError, FactoryError, UnknownGraphError

log = logging.getLogger("graphrun.registry")

BUILTINS: dict[str, str] = {
    "chain": "graphrun.examples.chain:build",
    "kb_search": "graphrun.examples.kb:build_search",
    "kb_agent": "graphrun.examples.kb:build_agent",
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


@dataclass(frozen=True, slots=True)
class GraphSpec:
    name: str
    target: str
    description: str | None = None


def _check_target(name: str, target: object) -> str:
    if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
        raise ConfigError(f'graph {name!r}: expected "module:callable", got {target!r}')
    return target


class GraphRegistry:
    def __init__(self, specs: dict[str, GraphSpec]) -> None:
        self._specs = dict(sorted(specs.items()))
        self._factories: dict[str, Callable[..., Any]] = {}

    @classmethod
    def load(cls, path: Path | None) -> GraphRegistry:
        specs = {name: GraphSpec(name, target) for name, target in BUILTINS.items()}
        if path is None:
            return cls(specs)
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read graph registry {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"graph registry {path} is not valid TOML: {exc}") from None
        graphs = data.get("graphs", {})
        if not isinstance(graphs, dict):
            raise ConfigError(f"graph registry {path}: [graphs] must be a table")
        for name, value in graphs.items():
            if isinstance(value, dict):
                target = _check_target(name, value.get("factory"))
                description = value.get("description")
                specs[name] = GraphSpec(name, target, str(description) if description else None)
            else:
                specs[name] = GraphSpec(name, _check_target(name, value))
        return cls(specs)

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

    def factory(self, name: str) -> Callable[..., Any]:
        spec = self.get(name)
        if name not in self._factories:
            module_name, attr = spec.target.split(":")
            try:
                fn = getattr(importlib.import_module(module_name), attr)
            except Exception as exc:
                raise FactoryError(f"graph {name!r}: cannot load factory {spec.target}: {exc!r}") from exc
            if not callable(fn):
                raise FactoryError(f"graph {name!r}: {spec.target} is not callable")
            self._factories[name] = fn
        return self._factories[name]

    def preload(self) -> list[str]:
        """Import every factory now (a worker does this at start-up, in a thread), so that no
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
                    doc = inspect.getdoc(self.factory(spec.name))
                    description = doc.strip().splitlines()[0] if doc else None
                except FactoryError as exc:
                    description = f"(unavailable: {exc})"
            out.append({"name": spec.name, "description": description})
        return out

    async def build(self, name: str, config: dict[str, Any]) -> Any:
        """Call the factory (in a thread if it is synchronous: it may be slow) and compile."""
        fn = self.factory(name)
        config = factory_config(config)
        try:
            if inspect.iscoroutinefunction(fn):
                built = await fn(config)
            else:
                built = await asyncio.to_thread(fn, config)
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
