"""The console in a real browser: Playwright driving Debian's chromium (``/usr/bin/chromium``, which
``make install`` installs when missing; Playwright's own browser download is never used). A person's
clicks, against a live console over a real store: the list, an execution where agents ran in
parallel map branches (each result under its own call), the inbox (approve, a partial edit merged,
an invalid edit refused with the schema error shown, reject), a question answered, and payloads
from the store that stay text. A failing test leaves a screenshot in .test-artifacts/console/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from duragent.agents import Agent, ask_human
from duragent.agents.messages import ModelRequest, ModelResponse, ToolResult
from duragent.agents.models.scripted import ScriptedModel
from duragent.console import ConsoleServer
from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.ops import LocalOperator
from duragent.tools import tool
from tests.integration.chromium import chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "console"
EVIL = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>"
BOOKED: list[dict[str, Any]] = []


@tool
def lookup(city: str) -> str:
    """Look up the weather.

    Args:
        city: where.
    """
    return f"sunny in {city}"


@tool(requires_approval=True)
def book(city: str, nights: int = 1, note: str = "") -> str:
    """Book a hotel.

    Args:
        city: where.
        nights: how many nights.
        note: a note for the hotel.
    """
    BOOKED.append({"city": city, "nights": nights, "note": note})
    return f"booked {city} for {nights}"


def _planner(request: ModelRequest) -> ModelResponse | str:
    """Two lookups at once (the same tool: pairing by name would be ambiguous), then a booking."""
    city = request.messages[0].content[0].text  # type: ignore[union-attr]
    results = [b for m in request.messages for b in m.content if isinstance(b, ToolResult)]
    if not results:
        return ModelResponse(content=[
            {"type": "tool_call", "id": f"{city}-north", "name": "lookup", "arguments": {"city": f"{city} north"}},
            {"type": "tool_call", "id": f"{city}-south", "name": "lookup", "arguments": {"city": f"{city} south"}}],
            stop_reason="tool_use", model="scripted:planner")
    if len(results) == 2:
        return ScriptedModel.tool_call("book", {"city": city, "nights": 2, "note": f"late arrival\n{EVIL}"},
                                       f"{city}-book")
    return f"done: {results[-1].content}"


planner = Agent(ScriptedModel(_planner, name="planner"), tools=[lookup, book], system="You plan trips.")


def trip(event: Any, ctx: DurableContext) -> list[Any]:
    batch = ctx.map(event["cities"], lambda child, city, index, items: planner.run(child, city).output,
                    name="cities")
    return [item.result for item in batch.all]


def question(event: Any, ctx: DurableContext) -> str:
    return "going to " + ask_human(ctx, f"Which city? {EVIL}", name="city")


def busy(event: Any, ctx: DurableContext) -> int:
    return int(ctx.step(lambda: event["n"], name="count"))


@dataclass
class Console:
    rt: LocalRuntime
    server: ConsoleServer

    @property
    def url(self) -> str:
        return self.server.url

    def resume(self) -> None:
        self.rt.run_until_idle(skip_time=False)  # skipping time would time the reviews out


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    BOOKED.clear()
    rt = LocalRuntime(tmp_path / "store.db", clock=VirtualClock(start=1_800_000_000.0))
    for n in range(53):
        rt.start(busy, {"n": n}, execution_id=f"busy-{n:02d}")
    rt.start(trip, {"cities": ["Oslo", "Rome"]}, execution_id="trip", name=f"trip {EVIL}")
    rt.start(question, {}, execution_id="question")
    rt.run_until_idle(skip_time=False)
    server = ConsoleServer(LocalOperator.open(tmp_path / "store.db")).start()
    try:
        yield Console(rt, server)
    finally:
        server.close()
        server.operator.close()
        rt.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with chromium(tmp_path_factory.mktemp("chromium-profile"), height=1600) as context:
        yield context


@pytest.fixture
def page(browser: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        if _failed(request):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / f"{request.node.name}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failing page: {shot}")
        still_open = page.evaluate("() => window.__pwned || 0") if not page.is_closed() else 0
        page.close()
    assert problems == [] and still_open == 0, problems


def _failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "rep_call", None)
    return bool(report is not None and report.failed)


def cards(page: Page, kind: str) -> Any:
    return page.locator(f".card.review[data-kind='{kind}']")


# -- the list ---------------------------------------------------------------------------------------
def test_the_list_pages_and_the_token_leaves_the_address_bar(console: Console, page: Page) -> None:
    page.goto(console.url)
    expect(page.locator("tr[data-id]")).to_have_count(50)
    assert "token" not in page.url and page.url.endswith("/")  # taken from the fragment, then dropped
    assert page.evaluate("() => document.cookie") == ""  # no cookie for other local servers to receive
    assert page.evaluate("() => sessionStorage.getItem('duragent-console-token')") == console.server.token
    expect(page.locator(".pager .range")).to_have_text("1–50 of 55")
    row = page.locator("tr[data-id='trip']")
    expect(row).to_contain_text(f"trip {EVIL}")  # the payload is text in the cell, not markup
    assert page.locator("img[src=x]").count() == 0
    page.click(".pager .next")
    expect(page.locator(".pager .range")).to_have_text("51–55 of 55")
    expect(page.locator("tr[data-id]")).to_have_count(5)
    page.select_option("#status-filter", "RUNNING")
    expect(page.locator(".pager .range")).to_have_text("1–2 of 2")
    expect(page.locator("#inbox-count")).to_have_text("3")

    page.click("tr[data-id='trip'] a")
    expect(page.locator("h1")).to_have_text(f"trip {EVIL}")
    assert page.title() == f"duragent · trip {EVIL}"


def test_without_the_token_the_page_says_how_to_open_it(console: Console, browser: BrowserContext) -> None:
    fresh = browser.new_page()  # a new tab: its own sessionStorage
    try:
        fresh.goto(console.server.base_url + "/reviews")
        expect(fresh.locator("#token-missing")).to_contain_text("#token=")
        assert fresh.locator(".card.review").count() == 0
    finally:
        fresh.close()


# -- an execution with agents in parallel branches ---------------------------------------------------
def test_the_execution_page_pairs_each_result_with_its_call(console: Console, page: Page) -> None:
    page.goto(console.url)
    page.goto(console.server.base_url + "/executions/trip")
    threads = page.locator(".thread")
    expect(threads).to_have_count(2)
    for index, city in enumerate(("Oslo", "Rome")):
        thread = threads.nth(index)
        expect(thread.locator("h3").first).to_contain_text(f"map-item-{index}")
        expect(thread.locator(".msg.system")).to_contain_text("You plan trips.")
        expect(thread.locator(".msg.user")).to_contain_text(city)
        for side in ("north", "south"):
            result = thread.locator(f".msg.tool_result[data-call='{city}-{side}']")
            expect(result).to_have_count(1)
            expect(result).to_contain_text(f"sunny in {city} {side}")  # its own call's result, in its own branch
        call = thread.locator(f".call[data-call='{city}-book']")
        expect(call.locator("dd").nth(2)).to_have_text(f"late arrival\n{EVIL}")  # real line break, payload as text
        expect(thread.locator(".msg.review")).to_contain_text("pending")
    expect(page.locator(".invocation")).to_have_count(1)
    expect(page.locator("section", has_text="Cost")).to_contain_text("Paid $")
    bars = page.locator(".timeline .bar")
    assert bars.count() > 10
    assert all(bar.bounding_box()["width"] >= 1 for bar in bars.all())  # type: ignore[index]
    assert page.locator("img[src=x]").count() == 0


def test_an_execution_that_cannot_run_says_why(console: Console, page: Page, tmp_path: Path) -> None:
    source = tmp_path / "half_written.py"
    source.write_text(f"# {EVIL}\ndef handler(event, ctx):\n    return (\n")  # a deploy caught half-written
    console.rt.start("deployed", {}, execution_id="stalled", target=f"{source}:handler")
    console.rt.run_once(execution_id="stalled")
    page.goto(console.url)
    page.goto(console.server.base_url + "/executions/stalled")
    expect(page.locator("h3.error")).to_have_text("Cannot run right now")
    expect(page.locator("pre.stalled")).to_contain_text("SyntaxError")
    expect(page.locator(".card .badge").first).to_have_text("RUNNING")  # waiting, not failed


# -- the inbox, by clicking -------------------------------------------------------------------------
def test_a_reviewer_edits_rejects_and_answers_by_clicking(console: Console, page: Page) -> None:
    page.goto(console.url)
    page.goto(console.server.base_url + "/reviews")
    reviews = cards(page, "tool_approval")
    expect(reviews).to_have_count(2)
    expect(page.locator(".pager .range")).to_have_text("1–3 of 3")
    oslo, rome = reviews.filter(has_text="Oslo"), reviews.filter(has_text="Rome")
    expect(oslo.locator("dd").nth(2)).to_have_text(f"late arrival\n{EVIL}")

    # an edit that does not fit the tool's schema is refused, with the schema error in the form
    rome.locator("button.edit").click()
    rome.locator("textarea").fill('{"nights": "three"}')
    rome.locator("button.send").click()
    expect(rome.locator(".form-error")).to_contain_text("'three' is not of type 'integer'")
    assert console.rt.get("trip").status == "RUNNING"
    # a partial edit: only nights changes, the rest stays as the model proposed
    rome.locator("textarea").fill('{"nights": 3}')
    rome.locator("button.send").click()
    expect(rome.locator(".notice")).to_contain_text("Approved.")

    oslo.locator("button.reject").click()
    oslo.locator("button.send").click()
    expect(oslo.locator(".form-error")).to_have_text("Feedback is required.")
    oslo.locator("textarea").fill("Oslo is full that week")
    oslo.locator("button.send").click()
    expect(oslo.locator(".notice")).to_contain_text("Rejected.")

    asked = cards(page, "question")
    expect(asked.locator("h3")).to_have_text(f"Which city? {EVIL}")
    asked.locator("button.answer").click()
    asked.locator("textarea").fill("Lisbon")
    asked.locator("button.send").click()
    expect(asked.locator(".notice")).to_contain_text("Answered.")

    console.resume()
    assert console.rt.get("question").result == "going to Lisbon"
    trip_info = console.rt.get("trip")
    assert trip_info.status == "SUCCEEDED", trip_info.error
    assert BOOKED == [{"city": "Rome", "nights": 3, "note": f"late arrival\n{EVIL}"}]
    oslo_result, rome_result = trip_info.result
    assert "Oslo is full that week" in oslo_result and "booked Rome for 3" in rome_result
    expect(page.locator(".card.review")).to_have_count(0)  # the inbox empties on its next refresh
    expect(page.locator("#reviews")).to_contain_text("Nothing waits for an answer.")

    page.goto(console.server.base_url + "/executions/trip")
    expect(page.locator(".msg.review[data-status='approved']")).to_contain_text("the reviewer changed")
    expect(page.locator(".msg.review[data-status='rejected']")).to_contain_text("Oslo is full that week")
    expect(page.locator(".msg.tool_result[data-call='Rome-book']")).to_contain_text("booked Rome for 3")
    expect(page.locator(".invocation")).to_have_count(2)
    expect(page.locator(".invocation").nth(1)).to_contain_text(re.compile(r"replayed \d+ results"))
    expect(page.locator("p.split")).to_contain_text("reused")
