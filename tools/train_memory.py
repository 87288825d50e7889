"""Server memory with the models loaded and one live training running (issue #13's 1 GB budget).

    python -m tools.train_memory [--artifacts DIR] [--json OUT]

Starts the app (``tools.browser.app_server``), draws a digit on the Draw page (all three models loaded and
answering), then starts a LeNet training on the Train page with the largest training set and epochs it
offers, presses Stop after the first epoch (so the evaluation and the loading back of the model happen
too) and waits for the result. Every 0.2 s it reads the resident memory of the server process and of each
of its descendants (the training worker) from /proc. Prints, per phase and overall, the server's own resident
memory (and its peak, VmHWM), its children's, and the proportional set size of them all (shared pages
counted once), in MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path

from tools import browser, load


def _kb(path: str, field: str) -> float:
    return next(int(line.split()[1]) for line in Path(path).read_text().splitlines() if line.startswith(field + ":"))


def memory_mb(pid: int) -> dict:
    """Resident memory now, in MB: ``server_rss`` (the process ``pid``), ``children_rss`` (its descendants
    together), and ``tree_pss``: all of them by proportional set size, which counts the pages they share (the
    TensorFlow library they both map, some 350 MB) once: what the machine really gives them."""
    out = {"server_rss": _kb(f"/proc/{pid}/status", "VmRSS") / 1024, "children_rss": 0.0,
           "tree_pss": _kb(f"/proc/{pid}/smaps_rollup", "Pss") / 1024}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                for c in map(int, (task / "children").read_text().split()):
                    todo.append(c)
                    out["children_rss"] += _kb(f"/proc/{c}/status", "VmRSS") / 1024
                    out["tree_pss"] += _kb(f"/proc/{c}/smaps_rollup", "Pss") / 1024
        except (OSError, StopIteration, ValueError):
            continue
    return out


async def measure(artifacts, timeout_s: float) -> dict:
    samples: list[tuple[dict, str]] = []
    phase = ["start"]
    async with browser.launch_chromium() as chromium:
        with browser.app_server(artifacts, timeout_s) as server:
            async def sample():
                while True:
                    with contextlib.suppress(OSError, StopIteration):  # a process ending as it is read
                        samples.append((memory_mb(server.proc.pid), phase[0]))
                    await asyncio.sleep(0.2)

            sampler = asyncio.create_task(sample())
            page = await chromium.new_page(viewport={"width": 1280, "height": 900})
            await browser.open_draw(page, server.url, timeout_s * 1000)
            await page.evaluate(load.WATCH, browser.ANSWER_DIGITS)
            await browser.draw(page, browser.DIGITS[7])
            await browser.read_predictions(page, timeout_s * 1000)
            phase[0] = "models loaded"
            await asyncio.sleep(2)
            phase[0] = "training"
            (trainer,) = await load.start_trainings(chromium, server.url, 1, timeout_s)
            await trainer.get_by_text("Epoch 2 of").first.wait_for(timeout=timeout_s * 1000 * 3)
            phase[0] = "stop, evaluate, load back"
            await trainer.locator(".st-key-stop button").first.click()
            await trainer.get_by_text("Your models in this session").first.wait_for(timeout=timeout_s * 1000 * 3)
            await asyncio.sleep(2)
            phase[0] = "after"
            await asyncio.sleep(2)
            sampler.cancel()
            server_hwm = _kb(f"/proc/{server.proc.pid}/status", "VmHWM") / 1024
    phases: dict[str, dict] = {}
    for m, ph in samples:
        top = phases.setdefault(ph, dict.fromkeys(m, 0.0))
        for k, v in m.items():
            top[k] = max(top[k], v)
    return {"phases": phases, "server_peak_rss": server_hwm, "samples": len(samples),
            "peak": {k: max(m[k] for m, _ in samples) for k in samples[0][0]}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.train_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--artifacts", metavar="DIR", help="trained models the server uses (default: artifacts/)")
    p.add_argument("--timeout", type=float, default=180, help="seconds any one wait may take (default 180)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the figures here")
    args = p.parse_args(argv)
    if not browser.chromium_available():
        print("error: needs Playwright and Chromium (set CHROMIUM=/path/to/chromium)", file=sys.stderr)
        return 2
    out = asyncio.run(measure(args.artifacts, args.timeout))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    for phase, f in out["phases"].items():
        print(f"{phase:>26}: server RSS {f['server_rss']:.0f} MB, its children's RSS {f['children_rss']:.0f} MB, "
              f"all together (PSS) {f['tree_pss']:.0f} MB (largest samples)")
    print(f"server peak RSS (VmHWM) {out['server_peak_rss']:.0f} MB; largest samples: children's RSS "
          f"{out['peak']['children_rss']:.0f} MB, all together (PSS) {out['peak']['tree_pss']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
