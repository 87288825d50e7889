"""The saved drawings in a real browser: Chromium (Playwright, through tools.browser) against `streamlit run`
with its own SQLite file. Draw a digit, say the models are wrong and it is another digit, save it, open the
"Your digits" page and find it there. Skipped without Chromium, except in CI, where that is a failure."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from unittest import mock

from core import drawings
from core.drawings import Store, engine_for

ROOT = Path(__file__).resolve().parent.parent
COLLECTION = "browser-test"


def test_draw_correct_save_and_find_it(chromium, best_artifacts, tmp_path):
    from tools.browser import app_server

    folder, _ = best_artifacts
    url = f"sqlite:///{tmp_path / 'drawings.sqlite'}"
    with mock.patch.dict(os.environ, {drawings.ENV_VAR: url}), app_server(folder) as server:
        label, shown = asyncio.run(draw_correct_save_and_find(server.url))
    engine = engine_for(url)
    [d] = Store(engine).page(COLLECTION)
    engine.dispose()
    assert d.label == label and d.image.shape == (28, 28) and d.image.max() > 0
    assert sorted(d.answers) == sorted(["numpy_mlp", "keras_mlp", "lenet"])
    assert shown == d.id


async def draw_correct_save_and_find(url: str) -> tuple[int, int]:
    from tools import browser

    async with browser.launch_chromium() as chromium:
        page = await chromium.new_page(viewport={"width": 1280, "height": 1000})
        crashes = []
        page.on("pageerror", lambda e: crashes.append(str(e)))
        await browser.open_page(page, url, f"draw?collection={COLLECTION}", idle=False, timeout_ms=120_000)
        await page.locator(browser.CANVAS).first.wait_for(state="visible", timeout=120_000)
        await browser.draw(page, browser.DIGITS[7])
        answers = await browser.read_predictions(page)
        await browser.wait_idle(page)

        box = page.locator(".st-key-drawings_box")
        await box.get_by_text("Is it a").wait_for()
        label = next(d for d in (1, 4, 2) if str(d) not in answers)  # a digit no model answered: a correction
        await box.get_by_role("radio", name=str(label), exact=True).click()  # the pill "No, it's a …"
        save = box.get_by_role("button", name=f"Save as {label}")
        await save.wait_for(timeout=30_000)
        await save.click()
        await box.get_by_text(f"Saved as a {label} in the collection {COLLECTION}").wait_for(timeout=30_000)
        assert not await browser.page_problems(page)

        await browser.open_page(page, url, f"collection?collection={COLLECTION}")
        assert "Your digits" in await page.locator(browser.TITLE).first.inner_text()
        card = page.get_by_text(f"Labelled {label} · #")
        await card.first.wait_for(timeout=30_000)
        assert await card.count() == 1
        shown_id = int((await card.first.inner_text()).split("#")[1].split()[0])
        drawings_metric = page.locator('[data-testid="stMetric"]').filter(has_text="Drawings")
        assert (await drawings_metric.locator('[data-testid="stMetricValue"]').inner_text()).strip() == "1"
        assert not await browser.page_problems(page)
        assert not crashes, crashes
        return label, shown_id
