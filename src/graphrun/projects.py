"""The operator's configuration file: which graphs exist, and what their process needs to load them.

Two formats, told apart by the file's suffix:

- ``graphrun.toml``: ``[graphs] name = "module:factory"`` (or a table with ``factory`` and ``description``);
- ``langgraph.json``, as ``langgraph dev`` reads it: ``graphs`` (``"./path.py:attr"`` relative to the
  file's folder, or ``"module.sub:attr"``, or ``{"path": ..., "description": ...}``), ``dependencies``
  (local folders put on ``sys.path``), ``env`` (a ``.env`` path or an inline mapping) and ``http.cors``.

Parsing is pure: it reads files but changes nothing. :meth:`Project.activate` is the one place that
touches ``sys.path`` and ``os.environ``; it runs before any graph module is imported. Every mistake is
one :class:`ConfigError` naming the file and the key.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from graphrun.errors import ConfigError

log = logging.getLogger("graphrun.registry")

LANGGRAPH_JSON = "langgraph.json"
GRAPHRUN_TOML = "graphrun.toml"

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ATTR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# langgraph.json keys that only matter to LangGraph's image builder: ignored without a word.
_BUILD_ONLY = frozenset(
    {
        "$schema",
        "python_version",
        "node_version",
        "pip_config_file",
        "pip_installer",
        "dockerfile_lines",
        "image_distro",
        "base_image",
        "api_version",
        "keep_pkg_tools",
        "ui",
        "ui_config",
        "node_modules",
    }
)
_SUPPORTED = frozenset({"graphs", "dependencies", "env", "http"})

# http.cors keys and the type each must have (the keys of Starlette's CORSMiddleware that
# LangGraph's server documents).
CORS_KEYS: dict[str, type | tuple[type, ...]] = {
    "allow_origins": list,
    "allow_methods": list,
    "allow_headers": list,
    "expose_headers": list,
    "allow_credentials": bool,
    "allow_origin_regex": str,
    "max_age": int,
}


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """Where a registered graph comes from.

    ``module`` or ``path`` (a Python file) names what to import, ``attr`` the object in it: a factory,
    a ``StateGraph`` or a compiled graph. ``langgraph`` says the entry came from a ``langgraph.json``,
    whose factories take a LangGraph ``RunnableConfig`` rather than graphrun's plain config dict.
    """

    name: str
    target: str  # as the configuration wrote it, for messages
    attr: str
    module: str | None = None
    path: Path | None = None
    description: str | None = None
    langgraph: bool = False

    @classmethod
    def from_target(cls, name: str, target: str, description: str | None = None) -> GraphSpec:
        """A ``module:attr`` spec (built-ins and ``graphrun.toml``); ValueError if malformed."""
        module, _, attr = target.rpartition(":")
        if not _MODULE.match(module) or not _ATTR.match(attr):
            raise ValueError(f'expected "module:callable", got {target!r}')
        return cls(name, target, attr, module=module, description=description)


@dataclass(frozen=True, slots=True)
class Project:
    """A loaded configuration file (``path`` None: only the built-in graphs)."""

    path: Path | None = None
    graphs: dict[str, GraphSpec] = field(default_factory=dict)
    dependencies: tuple[Path, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cors: dict[str, Any] | None = None

    def activate(self) -> None:
        """Make the project importable and its environment visible, before any graph loads.

        The real environment wins over ``env``: a variable already set is never replaced, so an
        operator can override a project's value without editing it. Idempotent.
        """
        for folder in self.dependencies:
            if str(folder) not in sys.path:
                sys.path.append(str(folder))
        for name, value in self.env.items():
            os.environ.setdefault(name, value)


def load_project(path: Path | None) -> Project:
    """Parse the configuration file at ``path`` (by suffix: ``.json`` is a langgraph.json)."""
    if path is None:
        return Project()
    if path.suffix.lower() == ".json":
        return _load_langgraph_json(path)
    return _load_toml(path)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read graph registry {path}: {exc.strerror}") from None


def _load_toml(path: Path) -> Project:
    try:
        data = tomllib.loads(_read(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"graph registry {path} is not valid TOML: {exc}") from None
    graphs = data.get("graphs", {})
    if not isinstance(graphs, dict):
        raise ConfigError(f"graph registry {path}: [graphs] must be a table")
    specs: dict[str, GraphSpec] = {}
    for name, value in graphs.items():
        target, description = (
            (value.get("factory"), value.get("description")) if isinstance(value, dict) else (value, None)
        )
        if not isinstance(target, str):
            raise ConfigError(f'graph registry {path}: graph {name!r}: expected "module:callable", got {target!r}')
        try:
            specs[name] = GraphSpec.from_target(name, target, str(description) if description else None)
        except ValueError as exc:
            raise ConfigError(f"graph registry {path}: graph {name!r}: {exc}") from None
    return Project(path=path, graphs=specs)


def _load_langgraph_json(path: Path) -> Project:
    try:
        data = json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    base = path.resolve().parent

    def bad(key: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {message}")

    graphs = data.get("graphs")
    if not isinstance(graphs, dict) or not graphs:
        raise bad("graphs", "expected an object naming at least one graph")
    specs = {name: _json_graph(name, value, base, bad) for name, value in graphs.items()}

    deps = data.get("dependencies", [])
    if not isinstance(deps, list):
        raise bad("dependencies", "expected a list of folders or packages")
    folders: list[Path] = []
    for i, dep in enumerate(deps):
        if not isinstance(dep, str):
            raise bad(f"dependencies[{i}]", f"expected a string, got {dep!r}")
        # Local paths start with "." or "/" (as in LangGraph's builder); anything else is a pip
        # requirement, which the operator installs.
        if dep.startswith((".", "/")):
            folder = (base / dep).resolve()
            if not folder.is_dir():
                raise bad(f"dependencies[{i}]", f"{dep!r} is not a folder ({folder})")
            folders.append(folder)

    unsupported = sorted(set(data) - _SUPPORTED - _BUILD_ONLY)
    http = data.get("http") or {}
    if not isinstance(http, dict):
        raise bad("http", "expected an object")
    unsupported += [f"http.{key}" for key in sorted(http) if key != "cors"]
    if unsupported:
        log.warning("%s: not supported by graphrun, ignored: %s", path, ", ".join(unsupported))

    return Project(
        path=path,
        graphs=specs,
        dependencies=tuple(folders),
        env=_json_env(data.get("env"), base, bad),
        cors=_json_cors(http.get("cors"), bad),
    )


def _json_graph(name: str, value: object, base: Path, bad: Any) -> GraphSpec:
    key = f"graphs.{name}"
    description = None
    if isinstance(value, dict):
        description = value.get("description")
        value = value.get("path")
        key += ".path"
    if not isinstance(value, str):
        raise bad(key, 'expected "./file.py:attr" or "module:attr" (or an object with "path")')
    where, _, attr = value.rpartition(":")
    if not where or not _ATTR.match(attr):
        raise bad(key, f'{value!r}: expected "./file.py:attr" or "module:attr"')
    desc = str(description) if description else None
    if "/" in where or where.endswith(".py"):
        file = (base / where).resolve()
        if not file.is_file():
            raise bad(key, f"{value!r}: no such file {file}")
        return GraphSpec(name, value, attr, path=file, description=desc, langgraph=True)
    if not _MODULE.match(where):
        raise bad(key, f"{value!r}: {where!r} is neither a file path nor a module name")
    return GraphSpec(name, value, attr, module=where, description=desc, langgraph=True)


def _json_env(env: object, base: Path, bad: Any) -> dict[str, str]:
    if env is None:
        return {}
    if isinstance(env, str):
        file = (base / env).resolve()
        if not file.is_file():
            # A project's .env holds secrets and is often not checked in: start without it, as
            # `langgraph dev` does, but say so.
            log.warning("env file %s does not exist; starting without it", file)
            return {}
        return {k: v for k, v in dotenv_values(file).items() if v is not None}
    if not isinstance(env, dict):
        raise bad("env", "expected the path of a .env file or an object of variables")
    out = {}
    for name, value in env.items():
        if isinstance(value, bool):
            out[name] = str(value).lower()
        elif isinstance(value, int | float | str):
            out[name] = str(value)
        else:
            raise bad(f"env.{name}", f"expected a string, got {value!r}")
    return out


def _json_cors(cors: object, bad: Any) -> dict[str, Any] | None:
    if cors is None:
        return None
    if not isinstance(cors, dict):
        raise bad("http.cors", "expected an object")
    for key, value in cors.items():
        expected = CORS_KEYS.get(key)
        if expected is None:
            raise bad(f"http.cors.{key}", f"unknown key; known: {', '.join(CORS_KEYS)}")
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if ok and isinstance(value, list):
            ok = all(isinstance(item, str) for item in value)
        if not ok:
            kind = "a list of strings" if expected is list else f"a {expected.__name__}"  # type: ignore[union-attr]
            raise bad(f"http.cors.{key}", f"expected {kind}, got {value!r}")
    return dict(cors)
