"""langgraph.json projects: graphs by file and by module, every kind of graph object, dependencies,
env, discovery beside graphrun.toml, and one clear ConfigError per mistake."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from graphrun.errors import ConfigError, FactoryError
from graphrun.projects import load_project
from graphrun.registry import GraphRegistry
from graphrun.settings import load_settings

GRAPHS_PY = """
import operator
from typing import Annotated, TypedDict

from langgraph.graph import START, StateGraph

LOADS = globals().get("LOADS", 0) + 1  # how many times this file was executed


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def _builder(tag: str) -> StateGraph:
    g = StateGraph(S)
    g.add_node("n", lambda s: {"log": [tag]})
    g.add_edge(START, "n")
    return g


compiled = _builder("compiled").compile()
builder = _builder("builder")


def no_args():
    return _builder("no_args")


def with_config(config):
    return _builder("configurable:" + ",".join(sorted(config["configurable"]))).compile()


async def async_factory(config):
    return _builder("async")


def needs_runtime(config, runtime):
    return _builder("never")


not_a_graph = 42
"""


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each project puts folders on sys.path and variables in os.environ: undone after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("LGJ_FROM_FILE", "LGJ_INLINE", "LGJ_REAL", "GRAPHRUN_LLM", "GRAPHRUN_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def _project(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


def _with_graphs(tmp_path: Path, **extra: Any) -> Path:
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "graphs.py").write_text(GRAPHS_PY)
    graphs: dict[str, Any] = {
        name: f"./agent/graphs.py:{name}"
        for name in ("compiled", "builder", "no_args", "with_config", "async_factory", "needs_runtime", "not_a_graph")
    }
    graphs["by_module"] = "agent.graphs:builder"
    graphs["described"] = {"path": "./agent/graphs.py:compiled", "description": "a described graph"}
    return _project(tmp_path, {"dependencies": ["."], "graphs": graphs, **extra})


async def _log(registry: GraphRegistry, name: str, config: dict[str, Any] | None = None) -> list[str]:
    graph = await registry.build(name, config or {})
    return (await graph.ainvoke({"log": []}))["log"]  # type: ignore[no-any-return]


async def test_every_kind_of_graph_object(tmp_path: Path) -> None:
    registry = GraphRegistry.load(_with_graphs(tmp_path))
    assert await _log(registry, "compiled") == ["compiled"]
    assert await _log(registry, "builder") == ["builder"]
    assert await _log(registry, "no_args") == ["no_args"]
    assert await _log(registry, "async_factory") == ["async"]
    # A langgraph.json factory gets a RunnableConfig: plain keys land under "configurable".
    assert await _log(registry, "with_config", {"model": "x", "configurable": {"user": "u"}}) == [
        "configurable:model,user"
    ]
    # The graph object of a module is built once, when its file is executed: every build shares it.
    assert await registry.build("compiled", {}) is await registry.build("compiled", {"other": 1})


async def test_a_file_named_by_two_graphs_is_executed_once(tmp_path: Path) -> None:
    registry = GraphRegistry.load(_with_graphs(tmp_path))
    assert registry.preload() == ["not_a_graph"]
    module = sys.modules[registry.factory("no_args").__module__]
    assert module.LOADS == 1
    assert registry.factory("compiled") is registry.factory("described")
    described = {g["name"]: g["description"] for g in registry.describe()}
    assert described["described"] == "a described graph"
    assert described["compiled"] is None  # not Pregel's class docstring


async def test_module_graphs_import_through_dependencies(tmp_path: Path) -> None:
    path = _with_graphs(tmp_path)
    registry = GraphRegistry.load(path)
    assert str(tmp_path.resolve()) in sys.path
    assert await _log(registry, "by_module") == ["builder"]


@pytest.mark.parametrize(("name", "fragment"), [("needs_runtime", "ServerRuntime"), ("not_a_graph", "is int")])
async def test_unusable_graph_objects(tmp_path: Path, name: str, fragment: str) -> None:
    registry = GraphRegistry.load(_with_graphs(tmp_path))
    with pytest.raises(FactoryError, match=fragment):
        await registry.build(name, {})


async def test_builtins_stay_and_the_project_wins_a_name_clash(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(GRAPHS_PY)
    registry = GraphRegistry.load(_project(tmp_path, {"graphs": {"chat": "./mine.py:compiled"}}))
    assert {"chain", "approval", "kb_agent", "chat"} <= set(registry.names)
    assert await _log(registry, "chat") == ["compiled"]


def test_env_file_and_inline_env_real_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "g.py").write_text(GRAPHS_PY)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "dev.env").write_text("LGJ_FROM_FILE=from file\nLGJ_REAL=from file\n")
    monkeypatch.setenv("LGJ_REAL", "real")
    GraphRegistry.load(_project(tmp_path, {"graphs": {"g": "./g.py:compiled"}, "env": "./conf/dev.env"}))
    assert os.environ["LGJ_FROM_FILE"] == "from file"  # relative to the json's folder, not the cwd
    assert os.environ["LGJ_REAL"] == "real"

    other = tmp_path / "inline"
    (other / "g.py").parent.mkdir()
    (other / "g.py").write_text(GRAPHS_PY)
    GraphRegistry.load(_project(other, {"graphs": {"g": "./g.py:compiled"}, "env": {"LGJ_INLINE": 3}}))
    assert os.environ["LGJ_INLINE"] == "3"


def test_a_missing_env_file_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "g.py").write_text(GRAPHS_PY)
    with caplog.at_level(logging.WARNING, logger="graphrun.registry"):
        project = load_project(_project(tmp_path, {"graphs": {"g": "./g.py:compiled"}, "env": ".env"}))
    assert project.env == {}
    assert "does not exist" in caplog.text


def test_unsupported_keys_are_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "g.py").write_text(GRAPHS_PY)
    config = {"graphs": {"g": "./g.py:compiled"}, "python_version": "3.11", "auth": {}, "http": {"app": "x:y"}}
    with caplog.at_level(logging.WARNING, logger="graphrun.registry"):
        load_project(_project(tmp_path, config))
    assert "ignored: auth, http.app" in caplog.text


def test_settings_find_langgraph_json_and_read_its_graphrun_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "g.py").write_text(GRAPHS_PY)
    _project(tmp_path, {"graphs": {"g": "./g.py:compiled"}, "env": {"GRAPHRUN_LLM": "fake:model"}})
    monkeypatch.chdir(tmp_path)
    settings = load_settings(_env_file=None)
    assert settings.registry_file == Path("langgraph.json")
    assert settings.llm == "fake:model"

    (tmp_path / "graphrun.toml").write_text("[graphs]\n")
    with pytest.raises(ConfigError, match="set GRAPHRUN_CONFIG"):
        load_settings(_env_file=None)
    monkeypatch.setenv("GRAPHRUN_CONFIG", "graphrun.toml")
    assert load_settings(_env_file=None).registry_file == Path("graphrun.toml")


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ([], "expected a JSON object"),
        ({}, "graphs: expected an object"),
        ({"graphs": {"g": 3}}, "graphs.g: expected"),
        ({"graphs": {"g": "./g.py"}}, "graphs.g: './g.py'"),
        ({"graphs": {"g": "./absent.py:graph"}}, "graphs.g: './absent.py:graph': no such file"),
        ({"graphs": {"g": "not a module:graph"}}, "graphs.g: 'not a module:graph'"),
        ({"graphs": {"g": {"description": "no path"}}}, "graphs.g.path: expected"),
        ({"graphs": {"g": "m:g"}, "dependencies": "."}, "dependencies: expected a list"),
        ({"graphs": {"g": "m:g"}, "dependencies": ["./nope"]}, r"dependencies\[0\]: './nope' is not a folder"),
        ({"graphs": {"g": "m:g"}, "env": 3}, "env: expected"),
        ({"graphs": {"g": "m:g"}, "env": {"A": [1]}}, "env.A: expected a string"),
        ({"graphs": {"g": "m:g"}, "http": {"cors": {"allow_origin": ["x"]}}}, "http.cors.allow_origin: unknown key"),
        (
            {"graphs": {"g": "m:g"}, "http": {"cors": {"allow_origins": "x"}}},
            "http.cors.allow_origins: expected a list",
        ),
        ({"graphs": {"g": "m:g"}, "http": {"cors": {"max_age": True}}}, "http.cors.max_age: expected a int"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, config: Any, key: str) -> None:
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=key) as info:
        GraphRegistry.load(path)
    assert str(path) in str(info.value)


def test_unreadable_and_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        GraphRegistry.load(tmp_path / "langgraph.json")
    (tmp_path / "langgraph.json").write_text("{")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        GraphRegistry.load(tmp_path / "langgraph.json")
