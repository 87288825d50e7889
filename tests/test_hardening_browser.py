"""Issue #15 on a phone: a touchscreen-sized Chromium (390x844, touch, no hover) against a real server.

[The canvas's undo, redo and clear showed on hover only, so never on a touchscreen, and the answers
landed below the canvas, off the screen.] Now buttons under the canvas undo, redo and clear, tapped, and
the answer comes right under them, said once. Skipped without Chromium, except in CI.
"""

from __future__ import annotations

import asyncio
import re

import pytest

PHONE = {"width": 390, "height": 844}
ALERT = '[data-testid="stAlert"]'


@pytest.fixture(scope="module")
def app(chromium, tiny_artifacts):
    from tools.browser import app_server

    with app_server(tiny_artifacts) as server:
        yield server.url


def test_drawing_on_a_phone(app):
    asyncio.run(drawing_on_a_phone(app))


async def drawing_on_a_phone(url: str) -> None:
    from tools import browser

    async with browser.launch_chromium() as chromium:
        context = await chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
        page = await context.new_page()
        await browser.open_draw(page, url)
        canvas = page.locator(browser.CANVAS).first
        verdict = page.locator(ALERT).filter(has_text=re.compile("agree|says"))
        asks = page.locator('[data-testid="stAlertContentInfo"]', has_text="Draw a digit")
        undo, redo, clear = (page.locator(f".st-key-canvas_{b} button") for b in ("undo", "redo", "clear"))
        assert await undo.is_visible() and await undo.is_disabled()

        await browser.draw(page, browser.DIGITS[7])
        await verdict.first.wait_for(timeout=60_000)
        await browser.wait_script_done(page)
        # One screen from the canvas's top holds the canvas, the buttons and the answer, said once.
        assert await verdict.count() == 1
        top, answer = await canvas.bounding_box(), await verdict.bounding_box()
        assert answer["y"] + answer["height"] - top["y"] <= PHONE["height"], (top, answer)
        assert not await browser.page_problems(page)

        await undo.tap()  # the only stroke: the canvas is empty again and the page asks for a digit
        await asks.wait_for(timeout=60_000)
        assert await verdict.count() == 0
        await redo.tap()  # back: answered again
        await verdict.first.wait_for(timeout=60_000)
        await browser.wait_script_done(page)
        await clear.tap()
        await asks.wait_for(timeout=60_000)
        await browser.wait_script_done(page)
        assert await redo.is_disabled() and await clear.is_disabled()
        assert not await browser.page_problems(page)


def test_uploading_one_image_after_another(app, tmp_path):
    """The upload cap (a session holds its last two files) leaves the uploader's own flow alone: each new image
    replaces the last and is read."""
    from PIL import Image, ImageDraw

    files = []
    for i, strokes in enumerate([[(50, 20), (50, 180)], [(20, 30), (150, 30), (70, 180)], [(30, 30), (150, 170)]]):
        im = Image.new("L", (200, 200), 255)
        ImageDraw.Draw(im).line(strokes, fill=0, width=14)
        files.append(tmp_path / f"digit{i}.png")
        im.save(files[-1])

    async def upload_three():
        from tools import browser

        async with browser.launch_chromium() as chromium:
            page = await chromium.new_page(viewport={"width": 1280, "height": 900})
            await browser.open_page(page, app, "draw")
            await page.get_by_text("Upload an image").click()
            for f in files:
                await page.locator('input[type="file"]').set_input_files(str(f))
                await page.get_by_text(f.name).wait_for(timeout=60_000)
                await page.locator(browser.ANSWER_DIGITS).nth(2).wait_for(timeout=60_000)
                await browser.wait_idle(page)
                assert not await browser.page_problems(page), f.name
                assert await page.get_by_text("What the models saw").is_visible()
            return await page.get_by_text("digit0.png").count()

    assert asyncio.run(upload_three()) == 0  # the first file is gone from the uploader
