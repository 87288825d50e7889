"""Measure the saved drawings: ``python -m tools.bench_drawings [--n 10000] [--postgres URL] [--browser]``.

    collection page     the "Your digits" page rendered for a collection of ``--n`` drawings (MNIST's test
                        digits with the committed models' own answers, so the page's accuracies are their
                        test accuracies): the page script's run under Streamlit's AppTest, first run and
                        reruns (median), and with ``--browser``, in Chromium from navigation to the page's
                        script done (tools.browser)
    concurrent saves    twenty sessions (threads) saving five drawings each at once: wall time for all
                        100, and that every one is stored exactly once; on SQLite, and on PostgreSQL with
                        ``--postgres URL`` (its tables are made if missing; the collection used is purged after)

Everything runs on a temporary SQLite file unless told otherwise. Prints a Markdown table and writes JSON
(default ``bench-results/drawings.json``). Timings are wall-clock on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "bench-results" / "drawings.json"
MODELS = ("numpy_mlp", "keras_mlp", "lenet")
COLLECTION = "bench"
SMALL = "bench-small"  # 30 drawings: the baseline


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def mnist_collection(n: int = 10_000, artifacts=None) -> list[tuple]:
    """``n`` (label, image, answers) rows: MNIST test digits with each committed model's own test-set
    probabilities (artifacts' predictions.npz), renormalised from float16."""
    from core.artifacts import artifacts_dir
    from core.data import load_mnist

    (_, _), (x, y) = load_mnist(download=False)
    folder = artifacts_dir(artifacts)
    probs = {}
    for m in MODELS:
        with np.load(folder / m / "predictions.npz", allow_pickle=False) as f:
            p = f["probs"][:n].astype(np.float64)
        probs[m] = p / p.sum(1, keepdims=True)
    return [(int(y[i]), x[i], {m: {"digit": int(probs[m][i].argmax()), "probs": probs[m][i]} for m in MODELS})
            for i in range(min(n, len(y)))]


def fill(store, rows, name: str = COLLECTION, batch: int = 2_000) -> None:
    """Save ``rows`` into collection ``name``, ``batch`` to a transaction."""
    for start in range(0, len(rows), batch):
        store.save_many(name, rows[start:start + batch])


@contextmanager
def env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- the collection page ---------------------------------------------------------------------------
def page_render(url: str, reruns: int = 5) -> dict:
    """The collection page's script under AppTest: first run (after Home), then ``reruns`` reruns."""
    from streamlit.testing.v1 import AppTest

    with env(DRAWINGS_DB_URL=url):
        at = AppTest.from_file(str(ROOT / "dashboard" / "Home.py"), default_timeout=120)
        at.query_params["collection"] = COLLECTION
        at.run()
        start = time.perf_counter()
        at.switch_page("views/collection.py").run()
        first = time.perf_counter() - start
        problems = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
        times = []
        for _ in range(reruns):
            start = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - start)
        cards = [m.value for m in at.markdown if m.value.startswith("**Labelled ")]
        count = next((m.value for m in at.metric if m.label == "Drawings"), None)
    return {"first_s": first, "rerun_median_s": statistics.median(times), "rerun_max_s": max(times),
            "reruns": reruns, "cards": len(cards), "drawings_shown": count, "problems": problems}


async def _browser_render(url: str, artifacts=None, repeats: int = 3) -> dict:
    """Navigation to the page until its first drawing is shown, for the big collection and, as the
    baseline, a small one (the same page with 30 drawings): the difference is what size costs."""
    from tools import browser

    out = {}
    with env(DRAWINGS_DB_URL=url), browser.app_server(artifacts) as server:
        async with browser.launch_chromium() as chromium:
            page = await chromium.new_page(viewport={"width": 1400, "height": 1000})
            await browser.open_page(page, server.url, f"collection?collection={COLLECTION}")  # warm
            for name in (COLLECTION, SMALL):
                times, script = [], []
                for _ in range(repeats):
                    start = time.perf_counter()
                    await browser.open_page(page, server.url, f"collection?collection={name}", idle=False)
                    script.append(time.perf_counter() - start)
                    await page.locator('[data-testid="stImage"]').first.wait_for()
                    times.append(time.perf_counter() - start)
                out[name] = {"median_s": statistics.median(times), "max_s": max(times),
                             "script_done_median_s": statistics.median(script), "repeats": repeats,
                             "problems": await browser.page_problems(page)}
    return out


# --- concurrent saves ---------------------------------------------------------------------------------
def concurrent_saves(url: str, sessions: int = 20, each: int = 5) -> dict:
    """``sessions`` threads released together, each saving ``each`` distinct drawings to a fresh collection."""
    from core.drawings import Store, engine_for

    engine = engine_for(url)
    store = Store(engine)
    store.ensure_schema()
    name = f"concurrent-{int(time.time())}"
    barrier = threading.Barrier(sessions)
    ids, errors, seconds = [], [], []
    probs = np.full(10, 0.01)
    probs[7] = 0.91
    answers = {m: {"digit": 7, "probs": probs} for m in MODELS}

    def session(s: int):
        barrier.wait()
        for k in range(each):
            image = np.zeros((28, 28), np.uint8)
            image.flat[:2] = (s, k)
            start = time.perf_counter()
            try:
                ids.append(store.save(name, 7, image, answers).id)
            except Exception as e:  # counted and reported
                errors.append(repr(e))
            seconds.append(time.perf_counter() - start)

    threads = [threading.Thread(target=session, args=(s,)) for s in range(sessions)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    stored = store.count(name)
    distinct = {tuple(d.image.flat[:2]) for d in store.page(name, limit=200)} if stored <= 200 else set()
    summary = store.summary(name)
    store.purge(name)
    engine.dispose()
    return {"dialect": engine.dialect.name, "sessions": sessions, "each": each, "wall_s": wall,
            "save_p50_ms": 1000 * statistics.median(seconds), "save_max_ms": 1000 * max(seconds),
            "saved": len(ids), "distinct_ids": len(set(ids)), "stored": stored, "distinct_images": len(distinct),
            "summary_count": summary.count, "errors": errors[:5]}


# --- the run -------------------------------------------------------------------------------------------
def run(n: int = 10_000, postgres: str | None = None, with_browser: bool = False, artifacts=None,
        log=_log) -> dict:
    from core.drawings import Store, engine_for

    out: dict = {"n": n}
    with tempfile.TemporaryDirectory(prefix="bench-drawings-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'drawings.sqlite'}"
        log(f"filling a collection of {n:,} drawings…")
        engine = engine_for(url)
        start = time.perf_counter()
        rows = mnist_collection(n, artifacts)
        fill(Store(engine, rows_per_collection=max(n, 1)), rows)
        out["fill_s"] = time.perf_counter() - start
        fill(Store(engine), rows[:30], SMALL)
        engine.dispose()
        log("rendering the collection page (AppTest)…")
        out["page"] = page_render(url)
        if with_browser:
            log("rendering the collection page (Chromium)…")
            out["browser"] = asyncio.run(_browser_render(url, artifacts))
        log("20 sessions saving at once (SQLite)…")
        out["concurrent"] = [concurrent_saves(url)]
    if postgres:
        log("20 sessions saving at once (PostgreSQL)…")
        out["concurrent"].append(concurrent_saves(postgres))
    return out


def format_table(r: dict) -> str:
    rows = [("Collection page, AppTest, first run", f"{r['page']['first_s']:.2f} s",
             f"{r['n']:,} drawings, {r['page']['cards']} cards shown"),
            ("Collection page, AppTest, rerun (median)", f"{r['page']['rerun_median_s']:.2f} s",
             f"max {r['page']['rerun_max_s']:.2f} s over {r['page']['reruns']}")]
    if "browser" in r:
        big, small = r["browser"][COLLECTION], r["browser"][SMALL]
        rows.append(("Collection page in Chromium, navigation to first drawing shown (median)",
                     f"{big['median_s']:.2f} s", f"script done at {big['script_done_median_s']:.2f} s; the same page "
                     f"with 30 drawings: {small['median_s']:.2f} s (script done {small['script_done_median_s']:.2f} s)"))
    for c in r["concurrent"]:
        rows.append((f"{c['sessions']} sessions saving {c['each']} each at once, {c['dialect']}", f"{c['wall_s']:.2f} s",
                     f"{c['stored']} stored of {c['sessions'] * c['each']}, {c['distinct_ids']} distinct ids; one save "
                     f"p50 {c['save_p50_ms']:.0f} ms, max {c['save_max_ms']:.0f} ms"))
    lines = ["| Measurement | Result | Detail |", "| --- | --- | --- |"]
    return "\n".join(lines + [f"| {a} | {b} | {c} |" for a, b, c in rows])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench_drawings", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="drawings in the measured collection (default 10,000)")
    p.add_argument("--postgres", metavar="URL", help="also time concurrent saves on this (empty) PostgreSQL database")
    p.add_argument("--browser", action="store_true", help="also time the page in Chromium (needs /usr/bin/chromium)")
    p.add_argument("--artifacts", metavar="DIR", help="trained models whose answers fill the collection")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="OUT")
    args = p.parse_args(argv)
    r = run(args.n, args.postgres, args.browser, args.artifacts)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(r, indent=2))
    print(format_table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
