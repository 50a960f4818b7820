"""The console (issue #17) in headless Chromium against `graphrun serve` with the example graphs: what
a person does on each view, checked on the page and on the server."""

from __future__ import annotations

import itertools
import json
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.browser import API_KEY, screenshot, skip_reason, wait_for

if (reason := skip_reason()) is not None:
    pytest.skip(reason, allow_module_level=True)

TERMINAL = ("complete", "error", "cancelled", "timeout", "interrupt")


def events_on_page(page: Page) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "[data-testid=event]",
        "els => els.map(e => ({event: e.dataset.event, id: e.dataset.id, node: e.dataset.node}))",
    )


def start_chain_from_page(page: Page, url: str, name: str, config: dict[str, object]) -> str:
    """Starts a chain run from the Graphs view's form, as a new workflow; returns the execution id."""
    page.goto(f"{url}/console/#/graphs/chain")
    expect(page.get_by_test_id("graph-node").first).to_be_visible()
    page.get_by_test_id("start-workflow").select_option("new")
    page.get_by_test_id("start-name").fill(name)
    page.get_by_test_id("start-config").fill(json.dumps(config))
    page.get_by_test_id("start-input").fill('{"n": 0}')
    page.get_by_test_id("start-submit").click()
    page.wait_for_url("**/console/#/runs/*")
    return page.url.rsplit("/", 1)[1]


def test_chain_run_started_from_the_page_shows_node_events_live(page: Page, server: str) -> None:
    page.goto(f"{server}/console/#/graphs/chain")
    expect(page.locator("[data-testid=graph-node][data-node=step_5]")).to_be_visible()
    screenshot(page, "graphs")
    execution_id = start_chain_from_page(page, server, "live", {"steps": 4, "delay_s": 0.5})
    detail = page.get_by_test_id("run-detail")
    expect(detail).to_have_attribute("data-id", execution_id)
    # Live: the first node's end is on the page while the run still runs.
    expect(page.locator("[data-testid=event][data-event=node_end]").first).to_be_visible(timeout=10_000)
    assert httpx.get(f"{server}/executions/{execution_id}").json()["status"] == "running"
    # A dropped connection: the page reconnects by itself with Last-Event-ID.
    assert page.evaluate("window.graphrunDropStreams()") == 1
    expect(page.locator("[data-testid=event][data-event=complete]")).to_be_visible(timeout=15_000)
    events = events_on_page(page)
    ids = [e["id"] for e in events if e["id"]]
    assert len(ids) == len(set(ids)), "a line was repeated"
    # Nothing lost either: every node's start and end, in order.
    assert [e["node"] for e in events if e["event"] == "node_end"] == ["step_1", "step_2", "step_3", "step_4"]
    assert [e["node"] for e in events if e["event"] == "node_start"] == ["step_1", "step_2", "step_3", "step_4"]
    assert events[0]["event"] == "start" and events[-1]["event"] == "complete"
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded")
    expect(page.get_by_test_id("run-output")).to_contain_text('"n": 4')
    expect(page.locator(f"[data-testid=run-row][data-id='{execution_id}']")).to_be_visible()


def test_cancel_makes_a_run_cancelled_within_a_second(page: Page, server: str) -> None:
    execution_id = start_chain_from_page(page, server, "slow", {"steps": 3, "delay_s": 20})
    expect(page.locator("[data-testid=event][data-event=node_start]").first).to_be_visible(timeout=10_000)
    clicked = time.monotonic()
    page.get_by_test_id("cancel").click()
    expect(page.locator("[data-testid=event][data-event=cancelled]")).to_be_visible(timeout=1_000)
    status = httpx.get(f"{server}/executions/{execution_id}").json()["status"]
    assert status == "cancelled" and time.monotonic() - clicked < 1.5
    expect(page.get_by_test_id("run-status")).to_have_text("cancelled")
    expect(page.get_by_test_id("cancel")).to_be_disabled()


def test_a_failed_run_shows_its_error(page: Page, server: str) -> None:
    start_chain_from_page(page, server, "failing", {"steps": 3, "fail_at": 2})
    expect(page.locator("[data-testid=event][data-event=error]")).to_be_visible(timeout=10_000)
    expect(page.get_by_test_id("run-error")).to_contain_text("RuntimeError")
    expect(page.get_by_test_id("run-error")).to_contain_text("fail_at")
    expect(page.get_by_test_id("run-status")).to_have_text("failed")
    expect(page.get_by_test_id("run-row")).to_have_count(3)  # this module's three runs so far
    screenshot(page, "runs")
    # The list's failed filter finds it, and the failed count has it.
    page.get_by_test_id("filter-status").select_option("failed")
    expect(page.locator("[data-testid=run-row][data-status=failed]").first).to_be_visible()
    expect(page.get_by_test_id("count-failed")).not_to_contain_text("0failed")


# --- chat -----------------------------------------------------------------------------------------


def slow_chat(url: str, delay_s: float, headers: dict[str, str] | None = None) -> str:
    """An assistant of the chat graph whose fake model waits ``delay_s`` before each word."""
    answer = httpx.post(
        f"{url}/assistants",
        json={"graph_id": "chat", "name": f"chat-{delay_s}s", "config": {"configurable": {"delay_s": delay_s}}},
        headers=headers or {},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["assistant_id"])


def ai_texts(page: Page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=msg-ai] .text", "els => els.map(e => e.textContent)")


def send(page: Page, text: str) -> None:
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("chat-send").click()


def watch_answer(page: Page, index: int, final: str, timeout_s: float = 20) -> list[str]:
    """Every text the ``index``-th answer showed until it read ``final``."""
    seen: list[str] = []

    def done() -> bool:
        texts = ai_texts(page)
        if len(texts) > index and (not seen or seen[-1] != texts[index]):
            seen.append(texts[index])
        return bool(seen) and seen[-1] == final

    wait_for(done, timeout_s, 0.02)
    return seen


def thread_of(page: Page) -> str:
    return str(wait_for(lambda: page.get_by_test_id("chat-thread").get_attribute("data-thread")))


def test_two_turn_chat_streams_tokens_and_keeps_the_first_turn(page: Page, server: str) -> None:
    assistant = slow_chat(server, 0.1)
    page.goto(f"{server}/console/#/chat/{assistant}")
    expect(page.get_by_test_id("chat-input")).to_be_enabled()
    send(page, "alpha")
    first = 'You said "alpha". This is turn 1.'
    seen = watch_answer(page, 0, first)
    # Streamed: the answer grew word by word, each text a beginning of the next.
    assert len(seen) >= 3, seen
    assert all(b.startswith(a) for a, b in itertools.pairwise(seen)), seen
    expect(page.get_by_test_id("chat-input")).to_be_enabled(timeout=10_000)
    send(page, "beta")
    second = 'You said "beta". This is turn 2; you began with "alpha".'
    assert len(watch_answer(page, 1, second)) >= 3
    expect(page.get_by_test_id("thread-state")).to_contain_text(json.dumps(second))
    thread_id = thread_of(page)
    expect(page.locator(f"[data-testid=thread-item][data-id='{thread_id}']")).to_be_visible(timeout=5_000)
    screenshot(page, "chat")
    # Reopened from the list on a fresh page: the conversation is there.
    page.goto(f"{server}/console/#/chat/{assistant}")
    page.locator(f"[data-testid=thread-item][data-id='{thread_id}']").click()
    expect(page.get_by_test_id("msg-ai")).to_have_count(2)
    assert ai_texts(page) == [first, second]


def test_reload_in_the_middle_of_an_answer_continues_it_without_repeating(page: Page, server: str) -> None:
    assistant = slow_chat(server, 0.3)
    page.goto(f"{server}/console/#/chat/{assistant}")
    expect(page.get_by_test_id("chat-input")).to_be_enabled()
    send(page, "one two three")
    final = 'You said "one two three". This is turn 1.'
    wait_for(lambda: ai_texts(page) and len(ai_texts(page)[0].split()) >= 3)
    thread_id = thread_of(page)
    before = ai_texts(page)[0]
    assert before != final
    page.reload()
    seen = watch_answer(page, 0, final, timeout_s=30)
    # After the reload the answer showed only beginnings of itself, then the whole of it once.
    assert all(final.startswith(t) for t in seen), seen
    assert ai_texts(page) == [final]
    expect(page.get_by_test_id("msg-human")).to_have_count(1)
    assert thread_of(page) == thread_id


def test_approval_question_then_approve_resumes_to_completion(page: Page, server: str) -> None:
    page.goto(f"{server}/console/#/chat/approval")
    expect(page.get_by_test_id("chat-input")).to_be_enabled()
    send(page, "deploy v2")
    expect(page.get_by_test_id("interrupt-question")).to_have_text("Approve 'deploy v2'?", timeout=15_000)
    thread_id = thread_of(page)
    assert httpx.get(f"{server}/threads/{thread_id}").json()["status"] == "interrupted"
    screenshot(page, "approval")
    page.get_by_test_id("approve").click()
    expect(page.locator("[data-testid=msg-ai] .text")).to_have_text("Approved: deploy v2. Done.", timeout=15_000)
    expect(page.get_by_test_id("interrupt")).to_have_count(0)
    wait_for(lambda: httpx.get(f"{server}/threads/{thread_id}").json()["status"] == "idle")
    # Both runs of the thread (the question, then the resume) in the Runs view, filtered by thread.
    page.goto(f"{server}/console/#/runs")
    page.get_by_test_id("filter-thread").fill(thread_id)
    expect(page.get_by_test_id("run-row")).to_have_count(2)
    expect(page.locator("[data-testid=run-row][data-status=succeeded]")).to_have_count(2)


def test_stop_during_an_answer_leaves_the_run_interrupted_on_the_server(page: Page, server: str) -> None:
    assistant = slow_chat(server, 0.5)
    page.goto(f"{server}/console/#/chat/{assistant}")
    expect(page.get_by_test_id("chat-input")).to_be_enabled()
    send(page, "stop me")
    wait_for(lambda: ai_texts(page) and ai_texts(page)[0])
    thread_id = thread_of(page)
    page.get_by_test_id("chat-stop").click()

    def run_status() -> str | None:
        runs = httpx.get(f"{server}/threads/{thread_id}/runs").json()
        return runs[0]["status"] if runs and runs[0]["status"] not in ("pending", "running") else None

    assert wait_for(run_status) == "interrupted"
    expect(page.get_by_test_id("chat-input")).to_be_enabled()


# --- API keys -------------------------------------------------------------------------------------


def test_with_api_keys_nothing_is_shown_until_the_key_is_entered(page: Page, keyed_server: str) -> None:
    page.goto(f"{keyed_server}/console/")
    expect(page.get_by_test_id("key-form")).to_be_visible()
    expect(page.get_by_test_id("tab-runs")).to_have_count(0)
    assert "chain" not in page.content()
    page.get_by_test_id("key-input").fill("wrong")
    page.get_by_test_id("key-submit").click()
    expect(page.get_by_text("That key was refused.")).to_be_visible()
    expect(page.get_by_test_id("tab-runs")).to_have_count(0)
    screenshot(page, "key")
    page.get_by_test_id("key-input").fill(API_KEY)
    page.get_by_test_id("key-submit").click()
    expect(page.get_by_test_id("tab-runs")).to_be_visible()
    # The key travels with the API calls and the event stream: a run started from the page is followed.
    execution_id = start_chain_from_page(page, keyed_server, "keyed", {"steps": 2})
    expect(page.locator("[data-testid=event][data-event=complete]")).to_be_visible(timeout=15_000)
    assert httpx.get(f"{keyed_server}/executions/{execution_id}").status_code == 401
    # Kept in this browser: a reload needs no key again.
    page.reload()
    expect(page.get_by_test_id("tab-runs")).to_be_visible()
    expect(page.get_by_test_id("key-form")).to_have_count(0)
