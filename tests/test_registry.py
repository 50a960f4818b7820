from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.graph import StateGraph

from graphrun.errors import ConfigError, FactoryError, UnknownGraphError
from graphrun.registry import BUILTINS, GraphRegistry


def test_builtins_are_always_registered() -> None:
    registry = GraphRegistry.load(None)
    assert set(BUILTINS) <= set(registry.names)
    with pytest.raises(UnknownGraphError, match="registered graphs: approval, chain, chat"):
        registry.get("nope")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[graphs\nx = 1", "not valid TOML"),
        ('graphs = "x"', "must be a table"),
        ('[graphs]\nx = "no_colon"', "module:callable"),
        ('[graphs]\nx = ":missing"', "module:callable"),
        ("[graphs]\nx = 3", "module:callable"),
        ('[graphs.x]\ndescription = "no factory"', "module:callable"),
    ],
)
def test_bad_registry_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "graphrun.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        GraphRegistry.load(path)


def test_missing_registry_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        GraphRegistry.load(tmp_path / "absent.toml")


def _plain(config: dict) -> StateGraph:  # type: ignore[type-arg]
    from graphrun.examples.chain import build

    return build(config)


async def _async_compiled(config: dict):  # type: ignore[no-untyped-def]
    return _plain(config).compile()


def _raises(config: dict) -> None:
    raise ValueError("bad credentials")


def _not_a_graph(config: dict) -> int:
    return 42


@pytest.fixture
def registry(tmp_path: Path) -> GraphRegistry:
    path = tmp_path / "graphrun.toml"
    path.write_text(
        "[graphs]\n"
        'plain = "tests.test_registry:_plain"\n'
        'compiled = { factory = "tests.test_registry:_async_compiled", description = "async, compiled" }\n'
        'raises = "tests.test_registry:_raises"\n'
        'wrong = "tests.test_registry:_not_a_graph"\n'
        'missing_module = "tests.no_such_module:build"\n'
        'missing_attr = "tests.test_registry:nothing"\n'
    )
    return GraphRegistry.load(path)


async def test_factories_plain_async_and_compiled(registry: GraphRegistry) -> None:
    for name in ("plain", "compiled"):
        graph = await registry.build(name, {"steps": 2})
        assert (await graph.ainvoke({"n": 0})) == {"n": 2}
    described = {g["name"]: g["description"] for g in registry.describe()}
    assert described["compiled"] == "async, compiled"
    assert described["missing_module"].startswith("(unavailable")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("raises", "ValueError: bad credentials"),
        ("wrong", "returned int"),
        ("missing_module", "cannot load tests"),
        ("missing_attr", "cannot load tests"),
    ],
)
async def test_factory_failures_are_factory_errors(registry: GraphRegistry, name: str, fragment: str) -> None:
    with pytest.raises(FactoryError, match=fragment) as info:
        await registry.build(name, {})
    assert repr(name) in str(info.value)
