"""Save a screenshot of every page: `python -m tools.screenshots [--out DIR] [--width 1400] [--dark]`.

Starts the app on a free local port, opens each page in Chromium, draws a 7 on the Draw page first,
and writes one PNG per page (default: dashboard/screenshots/, which the README shows). The server,
Chromium, the waits and the drawing are tools.browser's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from tools import browser

OUT = browser.ROOT / "dashboard" / "screenshots"
# url path -> file name; "" is the home page
PAGES = {"": "home", "dataset": "dataset", "training": "training", "results": "results", "calibration": "calibration",
         "misclassified": "misclassified", "draw": "draw", "beyond": "beyond", "collection": "collection", "train": "train", "inside": "inside"}


async def take(out: Path, width: int, dark: bool, names: list[str]) -> None:
    """One PNG per page in ``names``, printing each path as it is written."""
    async with browser.launch_chromium() as chromium:
        page = await chromium.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1,
                                       color_scheme="dark" if dark else "light")
        with browser.app_server() as server:
            for path, name in PAGES.items():
                if name not in names:
                    continue
                await page.set_viewport_size({"width": width, "height": 900})  # the last shot fitted it
                await browser.open_page(page, server.url, path)
                if name == "draw":
                    await browser.draw(page, browser.DIGITS[7])
                    await page.get_by_text("What the models saw").wait_for(timeout=60_000)
                    await browser.wait_idle(page)
                target = out / f"{name}.png"
                await browser.screenshot(page, target, width)
                print(target)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.screenshots", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs (default: dashboard/screenshots/)")
    p.add_argument("--width", type=int, default=1400, help="browser width in pixels (default 1400)")
    p.add_argument("--dark", action="store_true", help="ask for the dark theme")
    p.add_argument("--pages", nargs="+", choices=list(PAGES.values()), default=list(PAGES.values()))
    args = p.parse_args(argv)
    if not browser.chromium_available():
        print(f"error: needs Playwright and Chromium at {browser.CHROMIUM} (set CHROMIUM=/path/to/chromium)",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(take(args.out, args.width, args.dark, args.pages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
