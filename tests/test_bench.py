"""`python -m tools.bench --quick` runs end to end and writes every section with sane values.

No timing thresholds: timings belong to the benchmark's own report, taken on a quiet machine.
This proves the command works (CI-sized), that each measurement lands in the JSON, and that every
figure is a finite positive number, so a broken measurement cannot hide behind a table.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {
    "accuracy": None,
    "training": ["numpy_s", "keras_s", "keras_over_numpy", "images", "batch_size"],
    "gflops": ["numpy_mlp_train", "matmul", "fraction_of_matmul", "step_matmuls_only"],
    "latency": ["p50_ms", "p95_ms", "baseline_p50_ms", "baseline_p95_ms", "baseline_over_p50", "baseline_over_p95"],
    "keras_entry_points": ["images", "predict_images", "models"],
    "throughput": ["images", "images_per_s"],
    "augment": ["images", "threads_2_s", "threads_1_s"],
    "full_training": ["models", "total_s"],
    "app": ["cold_start_s", "peak_rss_mb"],
}


def numbers(value, path=""):
    """Every number in a nested dict/list, with where it is."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from numbers(v, f"{path}[{i}]")


def test_quick_bench_writes_every_section(tiny_artifacts, tmp_path):
    from core import MODELS
    from tools.browser import CHROMIUM, chromium_available

    app = chromium_available()
    if not app and os.environ.get("CI"):
        pytest.fail(f"Playwright or {CHROMIUM} missing (CI is set, so the app measurement must run)")
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "tools.bench", "--quick", "--json", str(out), "--artifacts", str(tiny_artifacts)]
    run = subprocess.run(cmd + ([] if app else ["--skip-app"]), check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    r = json.loads(out.read_text())

    assert r["meta"]["quick"] is True
    if not app:
        assert "skipped" in r.pop("app")
    for section, keys in SECTIONS.items():
        if section not in r and section == "app" and not app:
            continue
        assert section in r, section
        for key in keys or []:
            assert key in r[section], f"{section}.{key}"
        measured = list(numbers(r[section]))
        assert measured, section
        for where, v in measured:
            assert math.isfinite(v) and v > 0, f"{section}{where} = {v}"
    assert set(r["accuracy"]) == set(MODELS) == set(r["throughput"]["images_per_s"])
    assert all(0.1 < a <= 1 for a in r["accuracy"].values())  # one epoch on 1,000 images: well above chance
    assert r["throughput"]["images"] == 10_000
    assert r["training"]["batch_size"] == 128
    assert r["gflops"]["fraction_of_matmul"] < 5  # a rate, not a unit slip
    keras_models = r["keras_entry_points"]["models"]
    assert keras_models and set(keras_models) < set(MODELS)  # the Keras ones: not the NumPy MLP
    for times in keras_models.values():
        assert set(times) == {f"{call}_{q}_ms" for call in ("direct", "predict", "predict_on_batch", "predict_proba")
                                for q in ("p50", "p95")}
    if app:  # the server answered a drawn digit before its memory was read
        assert len(r["app"]["digits_shown"]) == 3 and all(d.isdigit() for d in r["app"]["digits_shown"])
    # The printed table has a row for each measurement.
    assert set(r["full_training"]["models"]) == set(MODELS)
    for row in ("Test accuracy", "Seconds per training epoch", "GFLOP/s", "Augmentation", "Full training", "p50", "p95", "One image through Keras", "Batch throughput",
                *(("cold start", "peak memory") if app else ())):
        assert row in run.stdout, row
