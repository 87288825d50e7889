"""The dashboard in a real browser: Chromium (Playwright) against `streamlit run` on a free local port.

Opens every page and checks none shows an exception or an error, then draws a digit on the Draw
page with the mouse and waits for all three models' predictions; undo and clear empty the canvas.
Skipped when /usr/bin/chromium is missing, except in CI (env CI set), where that is a failure.
The browser work is tools.browser's (async), run here with asyncio.run.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from core import SPECS

ROOT = Path(__file__).resolve().parent.parent
TITLES = [s.title for s in SPECS.values()]
PAGES = {"": "MNIST: three models", "dataset": "The dataset", "training": "Training",
         "results": "Results on the test set", "misclassified": "Misclassified digits", "draw": "Draw a digit"}


@pytest.fixture(scope="module")
def app(request, chromium):
    """The server, on the committed artifacts when they are there, else on a tiny fresh training run."""
    from tools.browser import app_server

    committed = ROOT / "artifacts"
    folder = committed if (committed / "manifest.json").is_file() else request.getfixturevalue("tiny_artifacts")
    started = time.monotonic()
    with app_server(folder) as server:
        yield server.url, time.monotonic() - started


def test_every_page_and_drawing_a_digit(app):
    asyncio.run(every_page_and_drawing_a_digit(*app))


async def every_page_and_drawing_a_digit(url: str, server_seconds: float) -> None:
    from tools import browser

    async with browser.launch_chromium() as chromium:
        page = await chromium.new_page(viewport={"width": 1280, "height": 900})
        crashes = []
        page.on("pageerror", lambda e: crashes.append(str(e)))
        started = time.monotonic()
        await browser.open_page(page, url)
        home_seconds = time.monotonic() - started
        print(f"server up in {server_seconds:.1f} s, home page shown {home_seconds:.1f} s later")
        assert home_seconds < 15, f"the home page took {home_seconds:.1f} s"  # 3 s on an idle machine; CI is shared

        for path, title in PAGES.items():
            await browser.open_page(page, url, path)
            assert title in await page.locator(browser.TITLE).first.inner_text()
            assert not await browser.page_problems(page), path or "home"

        # Draw: a stroke with the mouse, then all three models answer; the canvas sends the stroke once.
        await page.get_by_text("Draw a digit on the black square").wait_for()
        sent = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(frame)))
        await page.reload()  # a new websocket, watched from its start
        await page.get_by_text("Draw a digit on the black square").wait_for()
        await browser.wait_idle(page)
        before = len(sent)
        await browser.draw(page, browser.DIGITS[7])
        digits = await browser.read_predictions(page)
        await browser.wait_idle(page)
        assert len(sent) - before == 1, f"a stroke sent {len(sent) - before} messages"  # sent on pen lift, not twice
        metrics = page.locator(browser.ANSWERS)
        assert await metrics.count() == 3
        labels = [(await metrics.nth(i).locator(".who").inner_text()).strip() for i in range(3)]
        assert labels == TITLES
        assert all(d in list("0123456789") for d in digits), digits
        assert await page.get_by_text("What the models saw").is_visible()
        assert await page.get_by_text("agree").filter(visible=True).count()  # "All three models agree" or "... disagree"
        bars = page.locator(".pbars")
        assert await bars.count() == 3  # each model's ten probabilities, its answer named in the bars' label
        for i, d in enumerate(digits):
            assert f"Probabilities, {d}: " in await bars.nth(i).get_attribute("aria-label")
        seen = page.get_by_role("img", name="the 28x28 image the models saw")
        assert await seen.evaluate("img => [img.naturalWidth, img.naturalHeight, img.width]") == [28, 28, 140]
        copies = page.get_by_role("img", name="the copy")  # the test-time augmentation's four warps, named
        assert [await copies.nth(i).get_attribute("alt") for i in range(await copies.count())] == [
            "the copy turned 8° anticlockwise", "the copy turned 8° clockwise", "the copy slanted left",
            "the copy slanted right"]
        assert not await browser.page_problems(page), "draw, after drawing"

        # The page's own Undo, Redo and Clear under the canvas (they rerun the canvas and answers alone).
        asks = page.locator('[data-testid="stAlertContentInfo"]', has_text="Draw a digit")
        for key, answers in (("canvas_undo", 0), ("canvas_redo", 3), ("canvas_clear", 0)):
            await page.locator(f".st-key-{key} button").click()
            await (asks.wait_for(timeout=30_000) if not answers else browser.read_predictions(page))
            await browser.wait_idle(page)
            assert await metrics.count() == answers, key
            assert not await browser.page_problems(page), f"draw, after {key}"
        await browser.draw(page, browser.DIGITS[7])
        await browser.read_predictions(page)

        # The canvas's own toolbar: undo the stroke, then draw again and clear; each time the
        # predictions go and the page asks for a digit.
        for button in ("Undo", "Reset canvas & history"):
            await browser.clear_canvas(page, button)
            await asks.wait_for(timeout=30_000)
            await browser.wait_idle(page)
            assert await metrics.count() == 0, button
            assert not await browser.page_problems(page), f"draw, after {button}"
            if button == "Undo":
                await browser.draw(page, browser.DIGITS[7])
                await browser.read_predictions(page)
        assert not crashes, crashes


# Every pill of every row that lies past the right edge of its row: on a phone such a choice is cut off or hidden.
CUT_OFF = """() => Array.from(document.querySelectorAll('[data-testid="stButtonGroup"]')).flatMap(group => {
  const edge = group.getBoundingClientRect().right;
  return Array.from(group.querySelectorAll('button')).filter(b => b.getBoundingClientRect().right > edge + 1)
    .map(b => b.innerText);
})"""
# The galleries' cards: how many, the tops of the first two, and any answer ("✗ NumPy ANN 3 (87%)") that wrapped.
CARDS = """() => {
  const cards = Array.from(document.querySelectorAll('[data-testid="stMarkdownContainer"]'))
    .filter(m => /^True \\d/.test(m.innerText));
  return {count: cards.length, tops: cards.slice(0, 2).map(c => Math.round(c.getBoundingClientRect().top)),
          wrapped: cards.flatMap(c => Array.from(c.querySelectorAll('.stMarkdownColoredText')))
            .filter(s => new Set(Array.from(s.getClientRects(), r => Math.round(r.bottom))).size > 1)
            .map(s => s.innerText)};
}"""
# Each Plotly chart's y-axis tick labels, as drawn.
Y_TICKS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(plot =>
  Array.from(plot.querySelectorAll('.yaxislayer-above .ytick text')).map(t => t.textContent))"""


def test_a_phone_shows_every_choice_and_no_tick_label_twice(app):
    """[On a phone, the rows of digits to pick from cut off their 9, an accuracy axis with ticks half a point
    apart labelled two of them "99%", and the galleries showed one card a row beside an empty half of the screen.]
    Every pill lies inside its row, no chart labels two ticks alike, and the galleries put two cards in a row with
    each model's answer on one line."""
    asyncio.run(a_phone_shows_every_choice(app[0]))


async def a_phone_shows_every_choice(url: str) -> None:
    from tools import browser

    async with browser.launch_chromium() as chromium:
        page = await chromium.new_page(viewport={"width": 390, "height": 844})
        charts = 0
        for path in ("results", "misclassified", "beyond"):
            await browser.open_page(page, url, path)
            assert await page.evaluate(CUT_OFF) == [], path
            if path != "results":
                cards = await page.evaluate(CARDS)
                assert cards["count"] >= 2 and cards["tops"][0] == cards["tops"][1], (path, cards)
                assert cards["wrapped"] == [], (path, cards["wrapped"])
            if await page.locator(".js-plotly-plot").count():
                await page.locator(".js-plotly-plot .ytick").first.wait_for()
            for ticks in await page.evaluate(Y_TICKS):
                assert len(set(ticks)) == len(ticks), (path, ticks)
                charts += bool(ticks)
        assert charts >= 3  # Results alone draws several; none went unread
        await browser.open_draw(page, url)
        await browser.draw(page, browser.DIGITS[7])
        await browser.read_predictions(page)
        await browser.wait_idle(page)
        assert await page.get_by_text("No, it's a").count()  # the row of digits to correct the answer with
        assert await page.evaluate(CUT_OFF) == [], "draw"
