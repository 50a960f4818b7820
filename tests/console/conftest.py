"""Fixtures of the console's browser tests: one Chromium, one open `graphrun serve` and one with API keys
(each started once per module), and a fresh browser context (its own localStorage) per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.console.browser import API_KEY, CHROMIUM, CHROMIUM_ARGS, serve


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("console")) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("console-keys"), GRAPHRUN_API_KEYS=API_KEY) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    p = context.new_page()
    errors: list[Any] = []
    # A lambda, not errors.append: Playwright tags its handlers with an attribute, which a builtin refuses.
    p.on("pageerror", lambda error: errors.append(error))  # noqa: PLW0108
    yield p
    context.close()
    # An uncaught exception in the page is a bug even when what the test looked at came out right.
    assert not errors, errors
