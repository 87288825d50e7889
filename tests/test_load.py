"""The load test's path, CI-sized: 4 sessions drawing at once against one server (4 browser pages, then 1 page
and 3 protocol clients).

`python -m tools.load --sessions 20` is the real load test (see its docstring); this runs the same
code with 4 sessions of 2 digits each, so CI proves that concurrent sessions all get their answers,
with no exception or error on any page. Digits are checked against what was drawn when the server
uses fully trained models (the committed artifacts); with the tiny test models only that three
answers appear. Skipped without Chromium, except in CI (env CI set), where that is a failure.
"""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pytest


def test_concurrent_sessions_all_get_answers(tmp_path, best_artifacts, chromium):
    from tools import load

    folder, check = best_artifacts
    out = tmp_path / "load.json"
    code = load.main(["--sessions", "4", "--rounds", "2", "--artifacts", str(folder), "--json", str(out),
                      "--timeout", "120"] + ([] if check else ["--no-check-digits"]))
    result = json.loads(out.read_text())
    errors = {r["session"]: r["errors"] for r in result["sessions"] if r["errors"]}
    assert code == 0 and not errors, (errors, result.get("server_log_tail", "")[-2000:])
    summary = result["summary"]
    assert summary["sessions"] == 4 and summary["predictions"] == 8 and summary["failed_sessions"] == 0
    for r in result["sessions"]:
        assert len(r["shown"]) == 2 and all(len(s) == 3 for s in r["shown"])
        if check:
            assert r["shown"] == [[str(d)] * 3 for d in r["digits"]]
        assert all(math.isfinite(v) and v > 0 for v in r["latency_ms"])
    assert summary["server_peak_rss_mb"] > 100
    # What the server itself spent over the drawing phase, apart from the browsers beside it.
    assert summary["server_cpu_s"] > 0
    assert summary["server_cpu_ms_per_prediction"] == pytest.approx(1000 * summary["server_cpu_s"] / 8)
    assert all(len(summary["load_average"][k]) == 3 for k in ("before", "after"))
    assert 0 <= summary["cpu_stolen_pct"] <= 100  # /proc/stat: Linux, as CI


def test_visitors_whose_browsers_are_elsewhere_replay_real_strokes(tmp_path, best_artifacts, chromium):
    """--browsers 1: one Chromium page and three protocol clients sending the stroke a real page sent; every
    one gets the three answers, each client's are checked like a page's, and the figures are split by kind."""
    from tools import load

    folder, check = best_artifacts
    out = tmp_path / "load.json"
    code = load.main(["--sessions", "4", "--browsers", "1", "--rounds", "2", "--artifacts", str(folder),
                      "--json", str(out), "--timeout", "120"] + ([] if check else ["--no-check-digits"]))
    result = json.loads(out.read_text())
    errors = {r["session"]: r["errors"] for r in result["sessions"] if r["errors"]}
    assert code == 0 and not errors, (errors, result.get("server_log_tail", "")[-2000:])
    assert [r["browser"] for r in result["sessions"]] == [True, False, False, False]
    for r in result["sessions"]:
        assert len(r["shown"]) == 2 and all(len(s) == 3 and all(v.isdigit() for v in s) for s in r["shown"])
        if check:
            assert r["shown"] == [[str(d)] * 3 for d in r["digits"]]
    summary = result["summary"]
    assert summary["browsers"]["sessions"] == 1 and summary["protocol_clients"]["sessions"] == 3
    assert summary["predictions"] == 8 and summary["protocol_clients"]["p95_ms"] > 0


def test_a_server_it_did_not_start_has_unknown_cpu_and_memory():
    """With --url the server is not this command's: its CPU and memory are None, never a guess."""
    from tools import load

    out = {"sessions": [{"session": 0, "latency_ms": [120.0, 80.0], "errors": []}], "seconds": 3.0}
    s = load.summary(out)
    assert s["server_cpu_ms_per_prediction"] is None and s["server_peak_rss_mb"] is None
    out |= {"server_cpu_s": 0.5, "server_peak_rss_mb": 700.0}
    assert load.summary(out)["server_cpu_ms_per_prediction"] == pytest.approx(250.0)


def test_tree_cpu_counts_the_children_too():
    import subprocess
    import sys
    import time

    from tools import load

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"])
    try:
        deadline = time.monotonic() + 60
        while load.tree_cpu_s(proc.pid) < 0.6 and time.monotonic() < deadline:  # the grandchild's burn counts
            time.sleep(0.1)
        assert load.tree_cpu_s(proc.pid) >= 0.6
    finally:
        for child in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
            os.kill(int(child), signal.SIGTERM)
        proc.wait(10)


def test_predictions_are_right_while_another_session_resets_keras(tiny_artifacts):
    """What concurrent sessions do to the shared, cached models: Streamlit calls
    ``keras.backend.clear_session()`` after every script run of every session, while other sessions'
    threads are predicting. Answers must stay exactly those of a quiet, sequential run."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import keras
    import numpy as np
    from PIL import Image, ImageDraw

    from core import MODELS, load_models
    from core.predict import predict_image
    from tools.browser import DIGITS

    def canvas(strokes, shift):
        im = Image.new("L", (280, 280), 0)
        for stroke in strokes:
            ImageDraw.Draw(im).line([(x + shift, y) for x, y in stroke], fill=255, width=18, joint="curve")
        rgba = np.full((280, 280, 4), 255, np.uint8)
        rgba[..., 3] = np.asarray(im)
        return rgba

    models = load_models(tiny_artifacts)
    images = [canvas(strokes, shift) for strokes in DIGITS.values() for shift in (-30, 0, 30)]
    expected = [predict_image(im, models) for im in images]
    stop = threading.Event()
    resets = []

    def reset_like_streamlit():
        while not stop.is_set():
            keras.backend.clear_session(free_memory=len(resets) % 10 == 0)  # Streamlit's, mostly without its gc
            resets.append(1)

    resetter = threading.Thread(target=reset_like_streamlit)
    resetter.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda i: predict_image(images[i % len(images)], models), range(4 * len(images))))
    finally:
        stop.set()
        resetter.join()
    assert len(resets) > 5
    for i, have in enumerate(got):
        want = expected[i % len(images)]
        for name in MODELS:
            np.testing.assert_allclose(have["predictions"][name]["probs"], want["predictions"][name]["probs"], atol=1e-5)
