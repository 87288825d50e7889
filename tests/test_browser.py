"""The dashboard in a real browser: Chromium (Playwright) against `streamlit run` on a free local port.

Opens every page and checks none shows an exception or an error, then draws a digit on the Draw
page with the mouse and waits for all three models' predictions; undo and clear empty the canvas.
Skipped when /usr/bin/chromium is missing, except in CI (env CI set), where that is a failure.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TITLES = ["ANN from scratch (NumPy)", "ANN (Keras)", "LeNet-5 CNN (Keras)"]
PAGES = {"": "MNIST: three models", "dataset": "The dataset", "training": "Training",
         "results": "Results on the test set", "misclassified": "Misclassified digits", "draw": "Draw a digit"}


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright
    from screenshots import CHROMIUM_ARGS

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def app(request):
    """The server, on the committed artifacts when they are there, else on a tiny fresh training run."""
    from screenshots import serve

    committed = ROOT / "artifacts"
    folder = committed if (committed / "manifest.json").is_file() else request.getfixturevalue("tiny_artifacts")
    started = time.monotonic()
    with serve(env={"MNIST_ARTIFACTS": str(folder)}) as url:
        yield url, time.monotonic() - started


def assert_clean(page, where: str) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, f"{where}: {exceptions.first.inner_text()}"
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"{where}: {errors.first.inner_text()}"


def test_every_page_and_drawing_a_digit(app, browser):
    from screenshots import draw_digit, open_page, wait_idle

    url, server_seconds = app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    crashes = []
    page.on("pageerror", lambda e: crashes.append(str(e)))
    try:
        started = time.monotonic()
        open_page(page, url, "")
        home_seconds = time.monotonic() - started
        print(f"server up in {server_seconds:.1f} s, home page shown {home_seconds:.1f} s later")
        assert home_seconds < 15, f"the home page took {home_seconds:.1f} s"  # 3 s on an idle machine; CI is shared

        for path, title in PAGES.items():
            open_page(page, url, path)
            assert title in page.locator('[data-testid="stMain"] h1').first.inner_text()
            assert_clean(page, path or "home")

        # Draw: a stroke with the mouse, then all three models answer.
        page.get_by_text("Draw a digit on the black square").wait_for()
        draw_digit(page)
        metrics = page.locator('[data-testid="stMetric"]')
        metrics.nth(2).wait_for(timeout=60_000)
        wait_idle(page)
        assert metrics.count() == 3
        labels = [metrics.nth(i).locator('[data-testid="stMetricLabel"]').inner_text() for i in range(3)]
        assert labels == TITLES
        for i in range(3):
            assert metrics.nth(i).locator('[data-testid="stMetricValue"]').inner_text().strip() in list("0123456789")
        assert page.get_by_text("What the models saw").is_visible()
        assert page.get_by_text("agree").first.is_visible()  # "All three models agree" or "The models disagree"
        assert_clean(page, "draw, after drawing")

        # The canvas's own toolbar: undo the stroke, then draw again and clear; each time the
        # predictions go and the page asks for a digit.
        asks = page.locator('[data-testid="stAlertContentInfo"]', has_text="Draw a digit")
        for button in ("Undo", "Reset canvas & history"):
            page.locator(f'button[title="{button}"]').click()
            asks.wait_for(timeout=30_000)
            wait_idle(page)
            assert metrics.count() == 0, button
            assert_clean(page, f"draw, after {button}")
            if button == "Undo":
                draw_digit(page)
                metrics.nth(2).wait_for(timeout=60_000)
        assert not crashes, crashes
    finally:
        page.close()
