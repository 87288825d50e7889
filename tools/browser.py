"""The one toolkit for driving the app in a real browser, shared by the benchmark, the load test, the
screenshots and the real-browser tests.

It owns how the app is started and stopped, how Chromium is launched, and everything that knows what
the app looks like in the DOM (selectors, when a page is done, where the canvas is, the digits drawn):

    app_server          ``streamlit run dashboard/Home.py`` on a free local port in its own process
                        group, healthy before it is used, stopped with everything it started
    launch_chromium     headless Chromium through Playwright, with the one set of flags CHROMIUM_ARGS
    open_page           load a page and wait until its script has run, or until it is idle (wait_idle)
    open_draw, draw, clear_canvas, read_predictions     the Draw page's canvas, with the mouse
    page_problems       the exceptions and error boxes a page shows
    screenshot          a PNG of a whole page, the viewport fitted to its content first
    tree_peak_rss_mb    peak memory of a process and all it started
    chromium_available  whether Playwright and Chromium are there

The API is async Playwright, as the load test drives many pages at once; a synchronous caller (a pytest
test) runs its browser work with ``asyncio.run``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "Home.py"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]

TITLE = '[data-testid="stMain"] h1'  # every page starts with st.title
SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
BUSY = '[data-testid="stStatusWidget"], [data-testid="stSpinner"]'  # a script running; models loading
IDLE = "([done, busy]) => !!document.querySelector(done) && !document.querySelector(busy)"
PROBLEMS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
ANSWERS = ".answers .answer"  # the Draw page's answer cards, one per model (dashboard.charts.answer_cards)
ANSWER_DIGITS = f"{ANSWERS} .digit"
CANVAS = "canvas.upper-canvas"  # the drawable canvas's event layer (Playwright pierces its shadow DOM)
CANVAS_SIZE = 280  # the Draw page's canvas, in its own pixels
# Strokes on the canvas, in canvas pixels, that every trained model reads reliably.
DIGITS = {
    1: [[(140, 40), (140, 240)]],
    7: [[(70, 55), (210, 55), (120, 240)]],
    0: [[(140, 40), (200, 80), (215, 140), (200, 200), (140, 240), (80, 200), (65, 140), (80, 80), (140, 40)]],
}


# --- the server -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Server:
    """A running app: its process (the leader of its own process group), URL and log."""

    proc: subprocess.Popen
    url: str
    started: float  # time.perf_counter() just before the process was spawned
    log: IO[bytes]

    def log_tail(self, chars: int = 3000) -> str:
        """The end of everything the server has printed."""
        # pread, not seek + read: the server writes through the same file offset.
        fd = self.log.fileno()
        size = os.fstat(fd).st_size
        return os.pread(fd, chars, max(0, size - chars)).decode(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(artifacts=None, timeout_s: float = 120, cwd=None, args=(), env=None):
    """``streamlit run dashboard/Home.py`` on a free local port, serving the trained models in
    ``artifacts`` (default: its own default); yields a Server once ``/_stcore/health`` answers.

    ``cwd``: the folder it starts in (default: the repository root); ``args``: more ``--section.option value``
    flags; ``env``: more environment variables.

    Raises RuntimeError with the server's log if it exits or does not answer within ``timeout_s``.
    On exit the server and everything it started are stopped.
    """
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    if artifacts is not None:
        env["MNIST_ARTIFACTS"] = str(Path(artifacts).resolve())
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false", *map(str, args)]
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd or ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group: stopped with all it started
        try:
            server = Server(proc, f"http://127.0.0.1:{port}", started, log)
            _wait_healthy(server, timeout_s)
            yield server
        finally:
            _stop(proc)


def _wait_healthy(server: Server, timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.proc.returncode}:\n{server.log_tail()}")
        # Refused until the server listens.
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as r:
            if r.status == 200:
                return
        if time.perf_counter() > deadline:
            raise RuntimeError(f"streamlit did not answer on {server.url} within {timeout_s:.0f} s:\n"
                               f"{server.log_tail()}")
        time.sleep(0.05)  # short: the benchmark's cold start is timed through this wait


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group; SIGKILL to whatever of it is left 10 s later."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def tree_peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of ``pid`` plus every descendant still alive, in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


# --- the browser ----------------------------------------------------------------------------------
def chromium_available() -> bool:
    """Whether Playwright is installed and Chromium is at CHROMIUM (env CHROMIUM, default /usr/bin/chromium)."""
    return importlib.util.find_spec("playwright") is not None and Path(CHROMIUM).exists()


@contextlib.asynccontextmanager
async def launch_chromium():
    """Headless Chromium with CHROMIUM_ARGS; yields the Playwright browser, closed on exit."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def wait_script_done(page, timeout_ms: float = 90_000) -> None:
    """Until Streamlit has finished running the page's script (every element rendered)."""
    await page.wait_for_selector(SCRIPT_DONE, timeout=timeout_ms)


async def wait_idle(page, timeout_ms: float = 90_000) -> None:
    """Until the page is settled enough to screenshot or check: its title is shown, the script run is
    over and nothing is running or loading, twice 600 ms apart, and its charts have been drawn."""
    await page.wait_for_selector(TITLE, timeout=timeout_ms)
    for _ in range(2):  # idle twice, 600 ms apart: a spinner can appear a moment after the title
        await page.wait_for_timeout(600)
        await page.wait_for_function(IDLE, arg=[SCRIPT_DONE, BUSY], timeout=timeout_ms)
    await page.wait_for_timeout(500)  # plotly draws after the run ends


async def open_page(page, url: str, path: str = "", idle: bool = True, timeout_ms: float = 90_000) -> None:
    """Load the page at ``url/path`` and wait until its title is shown and its script has run; with
    ``idle``, until it is settled (wait_idle), which takes 1.7 s more at least: timed callers pass False."""
    await page.goto(f"{url}/{path}", wait_until="domcontentloaded")
    await page.wait_for_selector(TITLE, timeout=timeout_ms)
    await (wait_idle if idle else wait_script_done)(page, timeout_ms)


async def open_draw(page, url: str, timeout_ms: float = 120_000) -> None:
    """Open the Draw page and wait until its canvas is ready (not for idle: the load test times it)."""
    await open_page(page, url, "draw", idle=False, timeout_ms=timeout_ms)
    await page.locator(CANVAS).first.wait_for(state="visible", timeout=timeout_ms)


async def draw(page, strokes, steps: int = 8) -> float:
    """Draw ``strokes`` (polylines in canvas pixels, as DIGITS) on the Draw page's canvas with the mouse;
    returns time.perf_counter() just after the pen lifts."""
    canvas = page.locator(CANVAS).first
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    sx, sy = box["width"] / CANVAS_SIZE, box["height"] / CANVAS_SIZE
    for stroke in strokes:
        (x0, y0), *rest = stroke
        await page.mouse.move(box["x"] + x0 * sx, box["y"] + y0 * sy)
        await page.mouse.down()
        for x, y in rest:
            await page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=steps)
        await page.mouse.up()
    return time.perf_counter()


async def clear_canvas(page, button: str = "Reset canvas & history") -> None:
    """Press a button of the canvas's toolbar, by its title: the reset (bin) by default, or "Undo"."""
    await page.locator(f'button[title="{button}"]').click()


async def read_predictions(page, timeout_ms: float = 60_000) -> list[str]:
    """Wait until the three models' answers are shown and the script run is over; returns their
    digits as displayed."""
    values = page.locator(ANSWER_DIGITS)
    await values.nth(2).wait_for(timeout=timeout_ms)
    await wait_script_done(page, timeout_ms)
    return [s.strip() for s in await values.all_inner_texts()]


async def page_problems(page) -> list[str]:
    """The text of every exception and error box the page shows (none: a clean page)."""
    return [text.strip()[:300] for text in await page.locator(PROBLEMS).all_inner_texts()]


async def screenshot(page, path, width: int) -> None:
    """A PNG of the whole page at ``width``: Streamlit scrolls inside its own container, so the
    viewport is first made as tall as the content (fit to content)."""
    height = await page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
                                 "[data-testid=\"stMainBlockContainer\"]')].map(e => e.scrollHeight), 600)")
    await page.set_viewport_size({"width": width, "height": min(int(height) + 80, 8000)})
    await page.wait_for_timeout(700)  # charts re-layout to the new size
    await page.screenshot(path=str(path))
