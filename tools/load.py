"""Load test: many people drawing at once on one server.

    python -m tools.load --sessions 20 [--rounds 2] [--artifacts DIR] [--json OUT] [--url URL]

Starts ``streamlit run dashboard/Home.py`` on a free port (or uses ``--url``), opens
``--sessions`` pages in one Chromium, waits until every page's Draw canvas is ready, then
has all of them draw at the same moment: each session draws ``--rounds`` digits (a 1, a 7
and a 0, in turn, clearing the canvas in between) and waits for the three models' answers.

For every prediction it records the time from the pen lifting (the mouseup event) to the
three answers appearing in the page (a MutationObserver), both on the page's own clock.
It checks that each session shows all three models' answers, that they are the digit drawn
(``--no-check-digits`` skips this for barely trained models), and that no page shows an
exception or an error. Prints p50/p95 and exits 1 on any failure. ``--trainings N`` first draws on an idle
server, then has N more browsers (one each: one training per visitor) start a live LeNet training on the
Train page with the largest subset and epochs allowed, draws again, and checks they are all still training:
it reports the idle and the loaded figures. The server, Chromium and the
Draw page are driven through tools.browser.

``--browsers B`` (fewer than ``--sessions``) makes only B of the sessions Chromium pages and the rest
visitors whose browsers are elsewhere, as a class's are on their own devices: each speaks Streamlit's
protocol directly (``tools.stclient``), opens the Draw page and sends, at the same moment as everyone, the
very message a real browser sent for a stroke (recorded first, one per digit, from a Chromium page); its
time is from that message sent to the answers received, and its answers are checked like a page's. So the
server meets the whole class, while the machine runs only B browsers beside it.

When it starts its own server it also reports what the server itself costs, apart from the browsers
that share the machine with it: the server's CPU time (user + system, from /proc, the server and
everything it started) over the drawing phase divided by the predictions made, and its peak memory.
With ``--url`` the server is not this command's, so both are reported as unknown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from dashboard.charts import read_answer_cards
from tools import browser
from tools.stclient import StClient, elements, texts

# Installed before each stroke, given the answers' selector: the time of every mouseup, and a promise
# of the moment three answers show.
WATCH = """(answers) => {
  if (!window.__lifts) {
    window.__lifts = [];
    window.addEventListener('mouseup', () => window.__lifts.push(performance.now()), true);
  }
  window.__shown = new Promise(resolve => {
    const check = () => {
      if (document.querySelectorAll(answers).length >= 3) { observer.disconnect(); resolve(performance.now()); }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.body, {childList: true, subtree: true, characterData: true});
  });
}"""
ORDER = (1, 7, 0)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and every descendant still alive."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            # Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total / CLOCK_TICKS


async def session(i: int, chromium, url: str, rounds: int, ready: asyncio.Barrier, check: bool,
                  timeout_s: float, on_start=None) -> dict:
    page = await chromium.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_navigation_timeout(timeout_s * 1000)  # twenty pages loading at once take more than 30 s
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    result = {"session": i, "browser": True, "digits": [], "shown": [], "latency_ms": [], "errors": errors}
    try:
        try:
            await browser.open_draw(page, url, timeout_s * 1000)
        finally:
            if await ready.wait() == 0 and on_start:  # everyone draws at once, including after a failure to load
                on_start()
        for r in range(rounds):
            digit = ORDER[(i + r) % len(ORDER)]
            if r:
                await browser.clear_canvas(page)
                await page.locator(browser.ANSWER_DIGITS).first.wait_for(state="detached", timeout=timeout_s * 1000)
                await browser.wait_script_done(page, timeout_s * 1000)
            await page.evaluate(WATCH, browser.ANSWER_DIGITS)
            await browser.draw(page, browser.DIGITS[digit])
            shown_at = await asyncio.wait_for(page.evaluate("window.__shown"), timeout_s)
            lifted_at = await page.evaluate("window.__lifts[window.__lifts.length - 1]")
            shown = await browser.read_predictions(page, timeout_s * 1000)
            result["digits"].append(digit)
            result["shown"].append(shown)
            result["latency_ms"].append(shown_at - lifted_at)
            if len(shown) != 3 or not all(s.isdigit() for s in shown):
                errors.append(f"round {r}: expected three answers, the page shows {shown}")
            elif check and shown != [str(digit)] * 3:
                errors.append(f"round {r}: drew a {digit}, the models answered {shown}")
            errors.extend(f"round {r}: the page shows: {p}" for p in await browser.page_problems(page))
    except Exception as e:
        errors.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    finally:
        await page.close()
    return result


async def record_strokes(chromium, url: str, timeout_s: float) -> dict[int, bytes]:
    """The message (a BackMsg rerunning the Draw page's fragment with the canvas's drawing) a real Chromium
    page sends for a stroke of each digit in ``ORDER``, as bytes."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    page = await chromium.new_page(viewport={"width": 1280, "height": 900})
    sent: list = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    strokes = {}
    try:
        await browser.open_draw(page, url, timeout_s * 1000)
        for r, digit in enumerate(ORDER):
            if r:
                await browser.clear_canvas(page)
                await page.locator(browser.ANSWER_DIGITS).first.wait_for(state="detached", timeout=timeout_s * 1000)
                await browser.wait_script_done(page, timeout_s * 1000)
            before = len(sent)
            await page.evaluate(WATCH, browser.ANSWER_DIGITS)
            await browser.draw(page, browser.DIGITS[digit])
            await asyncio.wait_for(page.evaluate("window.__shown"), timeout_s)
            for payload in reversed(sent[before:]):
                msg = BackMsg()
                if isinstance(payload, bytes):
                    msg.ParseFromString(payload)
                    if msg.WhichOneof("type") == "rerun_script" and msg.rerun_script.fragment_id:
                        strokes[digit] = payload
                        break
            else:
                raise RuntimeError(f"the page sent no fragment rerun for its stroke of a {digit}")
    finally:
        await page.close()
    return strokes


async def light_session(i: int, url: str, rounds: int, ready: asyncio.Barrier, strokes: dict[int, bytes],
                        check: bool, timeout_s: float, on_start=None) -> dict:
    """A visitor whose browser is elsewhere: the Draw page over Streamlit's protocol, sending the recorded
    strokes; the latency is from the stroke's message sent to the end of the run that answers it."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    errors: list[str] = []
    result = {"session": i, "browser": False, "digits": [], "shown": [], "latency_ms": [], "errors": errors}
    try:
        async with StClient.connect(url) as client:
            try:
                await client.run("draw", timeout=timeout_s)
            finally:
                if await ready.wait() == 0 and on_start:
                    on_start()
            for r in range(rounds):
                digit = ORDER[(i + r) % len(ORDER)]
                stroke = BackMsg()
                stroke.ParseFromString(strokes[digit])
                sent_at = time.perf_counter()
                await client.send(stroke)
                msgs = []
                while True:
                    msgs += await client.until("script_finished", timeout_s)
                    if msgs[-1].script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                        break
                result["latency_ms"].append(1000 * (time.perf_counter() - sent_at))
                shown = [d for e in elements(msgs) if e.WhichOneof("type") == "html"
                         for d in read_answer_cards(e.html.body).values()]
                result["digits"].append(digit)
                result["shown"].append(shown)
                if len(shown) != 3 or not all(v.isdigit() for v in shown):
                    errors.append(f"round {r}: expected three answers, the server sent {shown}")
                elif check and shown != [str(digit)] * 3:
                    errors.append(f"round {r}: drew a {digit}, the models answered {shown}")
                problems = texts(msgs, "exception") + [a for a in texts(msgs, "alert") if "rror" in a]
                errors.extend(f"round {r}: the server sent: {p.splitlines()[0]}" for p in problems)
    except Exception as e:
        errors.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    return result


async def start_trainings(chromium, url: str, n: int, timeout_s: float) -> list:
    """``n`` browsers (own contexts: own visitors) each start a LeNet training on the Train page, with the
    largest training set and epochs the page offers; returns their pages, whose Stop button is live while
    it trains."""
    pages = []
    for _ in range(n):
        page = await (await chromium.new_context(viewport={"width": 1280, "height": 900})).new_page()
        await browser.open_page(page, url, "train", timeout_ms=timeout_s * 1000)
        await page.get_by_test_id("stSelectbox").first.click()
        await page.get_by_role("option", name="LeNet", exact=False).first.click()
        await browser.wait_script_done(page, timeout_s * 1000)
        for label in ("Training images", "Epochs"):  # their largest values: the End key on the thumb
            await page.get_by_role("slider", name=label).first.press("End")
            await browser.wait_script_done(page, timeout_s * 1000)
        await page.locator(".st-key-train button").click()
        await page.locator(".st-key-stop button:enabled").first.wait_for(timeout=timeout_s * 1000)
        pages.append(page)
    return pages


async def run(sessions: int, rounds: int, url: str | None, artifacts, check: bool, timeout_s: float,
              trainings: int = 0, browsers: int | None = None) -> dict:
    async with browser.launch_chromium() as chromium:
        if url:
            return await _drive(chromium, url, sessions, rounds, check, timeout_s, browsers=browsers)
        with browser.app_server(artifacts, timeout_s) as server:
            started = {}
            on_start = lambda: started.setdefault("cpu_s", tree_cpu_s(server.proc.pid))
            if trainings:
                idle = await _drive(chromium, server.url, sessions, rounds, check, timeout_s, browsers=browsers)
                trainers = await start_trainings(chromium, server.url, trainings, timeout_s)
            out = await _drive(chromium, server.url, sessions, rounds, check, timeout_s, on_start=on_start,
                               browsers=browsers)
            # The drawing phase: from the moment every page is ready to the last answer (with trainings: the
            # second drawing, so the trainings' workers are counted, as part of the server's process tree).
            out["server_cpu_s"] = tree_cpu_s(server.proc.pid) - started.get("cpu_s", 0.0)
            if trainings:
                out["idle"] = summary(idle)
                running = [await p.locator(".st-key-stop button").first.is_enabled() for p in trainers]
                out["trainings_running"] = sum(running)
                if not all(running):
                    out["sessions"][0]["errors"].append(f"only {sum(running)} of {trainings} trainings were "
                                                        "still running after the drawing")
            out["server_peak_rss_mb"] = browser.tree_peak_rss_mb(server.proc.pid)
            if server.proc.poll() is not None or any(r["errors"] for r in out["sessions"]):
                out["server_log_tail"] = server.log_tail()
            return out


async def _drive(chromium, url, sessions, rounds, check, timeout_s, on_start=None, browsers=None) -> dict:
    browsers = sessions if browsers is None else min(browsers, sessions)
    strokes = await record_strokes(chromium, url, timeout_s) if browsers < sessions else {}
    ready = asyncio.Barrier(sessions)
    start = time.perf_counter()
    results = await asyncio.gather(*(
        session(i, chromium, url, rounds, ready, check, timeout_s, on_start) if i < browsers else
        light_session(i, url, rounds, ready, strokes, check, timeout_s, on_start) for i in range(sessions)))
    return {"sessions": results, "seconds": time.perf_counter() - start}


def summary(out: dict) -> dict:
    latencies = [v for r in out["sessions"] for v in r["latency_ms"]]
    failed = [r for r in out["sessions"] if r["errors"]]
    s = {"sessions": len(out["sessions"]), "predictions": len(latencies), "failed_sessions": len(failed),
         "seconds": out["seconds"]}
    if latencies:
        s |= {f"{k}_ms": float(np.percentile(latencies, q)) for k, q in (("p50", 50), ("p95", 95), ("max", 100))}
    # None: not measured (--url), never a guess.
    s["server_peak_rss_mb"] = out.get("server_peak_rss_mb")
    s["server_cpu_s"] = out.get("server_cpu_s")
    # Each prediction's share of the server's CPU, including the reruns that clear the canvas between rounds.
    s["server_cpu_ms_per_prediction"] = (1000 * out["server_cpu_s"] / len(latencies)
                                         if "server_cpu_s" in out and latencies else None)
    for kind, pages in (("browsers", True), ("protocol_clients", False)):
        lat = [v for r in out["sessions"] if r.get("browser", True) == pages for v in r["latency_ms"]]
        s[kind] = {"sessions": sum(r.get("browser", True) == pages for r in out["sessions"])} | (
            {f"{k}_ms": float(np.percentile(lat, q)) for k, q in (("p50", 50), ("p95", 95))} if lat else {})
    for key in ("idle", "trainings_running"):
        if key in out:
            s[key] = out[key]
    return s


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=20, help="browser pages drawing at once (default 20)")
    p.add_argument("--rounds", type=int, default=2, help="digits each session draws, one after another (default 2)")
    p.add_argument("--artifacts", metavar="DIR", help="trained models the server uses (default: artifacts/)")
    p.add_argument("--url", help="an already running app instead of starting one")
    p.add_argument("--no-check-digits", dest="check", action="store_false",
                   help="only check that three answers appear (for barely trained models)")
    p.add_argument("--timeout", type=float, default=180, help="seconds any one wait may take (default 180)")
    p.add_argument("--trainings", type=int, default=0, metavar="N",
                   help="draw idle, then again while N other visitors train LeNet live; report both (default 0)")
    p.add_argument("--browsers", type=int, metavar="B",
                   help="only B of the sessions are Chromium pages; the others speak Streamlit's protocol, as "
                        "visitors whose browsers run on their own machines (default: every session is a page)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write every session's results here")
    args = p.parse_args(argv)
    if args.sessions < 1 or args.rounds < 1:
        p.error("--sessions and --rounds must be at least 1")
    if args.trainings < 0:
        p.error("--trainings must be 0 or more")
    if args.browsers is not None and not 0 <= args.browsers <= args.sessions:
        p.error("--browsers must be between 0 and --sessions")
    return args


def cpu_ticks() -> tuple[int, int] | None:
    """(ticks stolen by the hypervisor, all ticks) since boot, from /proc/stat's first line; None elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def main(argv=None) -> int:
    args = parse_args(argv)
    if not browser.chromium_available():
        print("error: needs Playwright and Chromium (set CHROMIUM=/path/to/chromium)", file=sys.stderr)
        return 2
    load_before = os.getloadavg()  # the machine's load says how far timings from a shared machine can be trusted
    ticks_before = cpu_ticks()  # and so does CPU time a virtual machine's host took back during the run
    out = asyncio.run(run(args.sessions, args.rounds, args.url, args.artifacts, args.check, args.timeout,
                          args.trainings, args.browsers))
    s = summary(out)
    s["load_average"] = {"before": [round(v, 2) for v in load_before],
                         "after": [round(v, 2) for v in os.getloadavg()]}
    ticks_after = cpu_ticks()
    s["cpu_stolen_pct"] = (round(100 * (ticks_after[0] - ticks_before[0]) / max(1, ticks_after[1] - ticks_before[1]), 1)
                           if ticks_before and ticks_after else None)
    out["summary"] = s
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    for r in out["sessions"]:
        for e in r["errors"]:
            print(f"session {r['session']}: {e}", file=sys.stderr)
    if s["failed_sessions"] and "server_log_tail" in out:
        print("server log (tail):\n" + out["server_log_tail"], file=sys.stderr)
    lat = (f"stroke end -> prediction shown: p50 {s['p50_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms, "
           f"max {s['max_ms']:.0f} ms" if "p50_ms" in s else "no prediction was shown")
    if s["server_cpu_ms_per_prediction"] is not None:
        server = (f"server CPU {s['server_cpu_ms_per_prediction']:.0f} ms per prediction "
                  f"({s['server_cpu_s']:.1f} s in all), server peak memory {s['server_peak_rss_mb']:.0f} MB")
    elif s["server_peak_rss_mb"] is not None:
        server = f"server peak memory {s['server_peak_rss_mb']:.0f} MB"
    else:
        server = "server CPU and memory unknown (--url: not this command's server)"
    if "idle" in s:
        i = s["idle"]
        print(f"idle server: p50 {i.get('p50_ms', float('nan')):.0f} ms, p95 {i.get('p95_ms', float('nan')):.0f} ms; "
              f"below: with {s['trainings_running']} live training(s) running")
    if s["protocol_clients"]["sessions"]:
        print("; ".join(f"{kind.replace('_', ' ')} ({f['sessions']}): p50 {f.get('p50_ms', float('nan')):.0f} ms, "
                        f"p95 {f.get('p95_ms', float('nan')):.0f} ms" for kind, f in
                        (("browsers", s["browsers"]), ("protocol_clients", s["protocol_clients"]))))
    print(f"{s['sessions']} sessions, {s['predictions']} predictions in {s['seconds']:.1f} s, "
          f"{s['failed_sessions']} sessions failed; {lat}; {server}; load average (1, 5, 15 min) "
          f"before {' '.join(map(str, s['load_average']['before']))}, after "
          f"{' '.join(map(str, s['load_average']['after']))}"
          + (f"; CPU stolen by the host {s['cpu_stolen_pct']}%" if s["cpu_stolen_pct"] is not None else ""))
    idle_failed = s.get("idle", {}).get("failed_sessions")
    return 1 if s["failed_sessions"] or idle_failed or s["predictions"] < args.sessions * args.rounds else 0


if __name__ == "__main__":
    sys.exit(main())
