"""Save a screenshot of every page: `python dashboard/screenshots.py [--out DIR] [--width 1400] [--dark]`.

Starts the app on a free local port, opens each page in Chromium (Playwright), draws a digit on
the Draw page first, and writes one PNG per page (default: dashboard/screenshots/, which the README
shows). The helpers here (``serve``, ``open_page``, ``draw_digit``) are shared with tests/test_browser.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage"]
# url path -> file name; "" is the home page
PAGES = {"": "home", "dataset": "dataset", "training": "training", "results": "results",
         "misclassified": "misclassified", "draw": "draw", "train": "train", "inside": "inside"}
SEVEN = [[(0.22, 0.2), (0.78, 0.2), (0.5, 0.55), (0.4, 0.85)]]  # one stroke, in canvas fractions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(env: dict | None = None, timeout: float = 60):
    """Run `streamlit run dashboard/Home.py` on a free port; yield its URL; always stop it."""
    port = free_port()
    log = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "streamlit", "run", str(HERE / "Home.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: stopped with everything it started
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read().decode(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.25)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def wait_idle(page, timeout: float = 90_000) -> None:
    """Wait until the script run is over: a title is shown and the running indicator has gone."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout)
    idle = ("() => !document.querySelector('[data-testid=\"stStatusWidget\"], "
            "[data-testid=\"stSpinner\"]')")  # spinners: models still loading
    for _ in range(2):  # idle twice, 600 ms apart: a spinner can appear a moment after the title
        page.wait_for_timeout(600)
        page.wait_for_function(idle, timeout=timeout)
    page.wait_for_timeout(500)  # plotly draws after the run ends


def open_page(page, url: str, path: str, timeout: float = 90_000) -> None:
    page.goto(f"{url}/{path}", wait_until="domcontentloaded")
    wait_idle(page, timeout)


def draw_digit(page, strokes=SEVEN, timeout: float = 30_000) -> None:
    """Draw with the mouse on the canvas's top (event) layer; strokes are polylines in [0, 1] fractions."""
    target = page.locator("canvas.upper-canvas").first
    target.wait_for(state="visible", timeout=timeout)
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    for stroke in strokes:
        points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x, y, steps=12)
        page.mouse.up()


def fit_to_content(page, width: int) -> None:
    """Make the viewport as tall as the page, as Streamlit scrolls inside its own container."""
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
                           "[data-testid=\"stMainBlockContainer\"]')].map(e => e.scrollHeight), 600)")
    page.set_viewport_size({"width": width, "height": min(int(height) + 80, 8000)})
    page.wait_for_timeout(700)  # charts re-layout to the new size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=HERE / "screenshots", help="folder for the PNGs")
    p.add_argument("--width", type=int, default=1400, help="browser width in pixels (default 1400)")
    p.add_argument("--dark", action="store_true", help="ask for the dark theme")
    p.add_argument("--pages", nargs="+", choices=list(PAGES.values()), default=list(PAGES.values()))
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with serve() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": 900}, device_scale_factor=1,
                                color_scheme="dark" if args.dark else "light")
        for path, name in PAGES.items():
            if name not in args.pages:
                continue
            page.set_viewport_size({"width": args.width, "height": 900})
            open_page(page, url, path)
            if name == "draw":
                draw_digit(page)
                page.get_by_text("What the models saw").wait_for(timeout=60_000)
                wait_idle(page)
            fit_to_content(page, args.width)
            target = args.out / f"{name}.png"
            page.screenshot(path=str(target))
            print(target)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
