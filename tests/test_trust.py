"""A comparison you can trust: seeds, intervals, paired tests and calibration, from training to what
the pages show. Every figure a page shows is recomputed here from the artifact files with slow,
obvious code (loops, exact fractions), never with the functions the app uses."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from core import MODELS, SPECS, load_models
from core import artifacts as art
from core.data import scale
from core.predict import predict_image

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "dashboard" / "Home.py")
PAIRS = [(a, b) for i, a in enumerate(MODELS) for b in MODELS[i + 1:]]


# --- slow references ---------------------------------------------------------------------------
def wilson_by_search(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson interval from its definition: every p the score test does not reject, found by bisection."""
    phat = k / n

    def inside(p):
        return (phat - p) ** 2 <= z * z * p * (1 - p) / n

    def edge(lo, hi):  # lo outside, hi inside (or the reverse): bisect to the boundary
        for _ in range(200):
            mid = (lo + hi) / 2
            if inside(mid) == inside(hi):
                hi = mid
            else:
                lo = mid
        return hi

    low = 0.0 if inside(0.0) else edge(0.0, phat)
    high = 1.0 if inside(1.0) else edge(1.0, phat)
    return low, high


def mcnemar_by_hand(right_a, right_b) -> tuple[int, int, float]:
    b = c = 0
    for x, y in zip(right_a, right_b):
        b += bool(x) and not y
        c += bool(y) and not x
    n = b + c
    if n == 0:
        return b, c, 1.0
    tail = sum(Fraction(math.comb(n, i), 2 ** n) for i in range(min(b, c) + 1))
    return b, c, float(min(Fraction(1), 2 * tail))


def ece_by_hand(probs, labels, bins: int = 15) -> float:
    total, n = 0.0, len(labels)
    groups = [[] for _ in range(bins)]
    for p, y in zip(np.asarray(probs, np.float64), labels):
        conf = float(p.max())
        i = min(bins - 1, max(0, math.ceil(conf * bins) - 1))
        groups[i].append((conf, int(p.argmax()) == int(y)))
    for g in groups:
        if g:
            total += len(g) / n * abs(sum(r for _, r in g) / len(g) - sum(c for c, _ in g) / len(g))
    return total


def temper_by_hand(p, t):
    logs = [math.log(max(float(v), float(np.finfo(np.float32).tiny))) / t for v in p]
    top = max(logs)
    e = [math.exp(v - top) for v in logs]
    return np.array([v / sum(e) for v in e])


def predictions(folder, name):
    return art.read("predictions", name, folder)


# --- training with seeds -------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_every_seed_is_recorded_and_the_kept_model_is_the_first(tiny_artifacts, name):
    table = art.read("seeds", name, tiny_artifacts)
    kept = predictions(tiny_artifacts, name)
    metrics = art.read("metrics", name, tiny_artifacts)
    assert list(table["seed"]) == [0, 1]
    np.testing.assert_array_equal(table["pred"][0], kept["pred"])  # the model shown is seed 0's
    assert table["accuracy"][0] == pytest.approx(metrics["test_accuracy"])
    assert not np.array_equal(table["pred"][0], table["pred"][1])  # another seed really is another run
    for row, acc in zip(table["pred"], table["accuracy"]):
        assert acc == pytest.approx(np.mean(row == table["label"]))
    manifest = art.read("manifest", folder=tiny_artifacts)
    assert manifest["models"][name]["seeds"] == [0, 1]
    assert art.read("settings", name, tiny_artifacts)["settings"]["train"]["seed"] == 0


@pytest.mark.parametrize("change", ["accuracy", "confusion", "model"])
def test_a_seeds_file_that_disagrees_with_itself_is_refused(own_artifacts, change):
    path = own_artifacts / "lenet" / "seeds.npz"
    with np.load(path) as f:
        table = {k: f[k] for k in f.files}
    if change == "accuracy":
        table["accuracy"] = table["accuracy"] + 0.01
    elif change == "confusion":
        table["confusion"][1, 3, 5] += 1
    else:
        table["model"] = np.array("keras_mlp")
    np.savez(path, **table)
    with pytest.raises(art.ArtifactError, match=r"seeds\.npz"):
        art.read("seeds", "lenet", own_artifacts)


def test_interrupted_multi_seed_run_keeps_the_previous_artifacts(tmp_path, tiny_artifacts):
    out = tmp_path / "art"
    shutil.copytree(tiny_artifacts, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.train", "--models", "numpy_mlp", "lenet", "--subset", "500", "--epochs", "3",
         "--seeds", "2", "--jobs", "2", "--out", str(out)],
        cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = 0
        for line in proc.stdout:
            started += line.startswith("started")
            if started == 2:
                break
        time.sleep(3)  # the workers are loading data and training
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "previous artifacts are untouched" in stderr
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]  # no staging or worker folders left
    workers = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert workers == []  # no worker outlives the run


def test_a_worker_that_dies_stops_the_run_and_keeps_the_previous_artifacts(tmp_path, tiny_artifacts):
    out = tmp_path / "art"
    shutil.copytree(tiny_artifacts, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.train", "--models", "numpy_mlp", "--subset", "500", "--epochs", "50",
         "--seeds", "3", "--jobs", "2", "--out", str(out)],
        cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "epoch" in line:  # a worker is training
                break
        workers = subprocess.run(["pgrep", "-f", f"core.train --worker --out {out}"], capture_output=True,
                                 text=True).stdout.split()
        assert len(workers) == 2
        os.kill(int(workers[0]), signal.SIGKILL)  # the out-of-memory killer, say
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, stderr
    assert "failed (exit -9)" in stderr
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]
    assert subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split() == []


def test_seed_options_are_checked():
    for args, message in ((["--seeds", "0"], "--seeds must be between 1 and 50"),
                          (["--jobs", "0"], "--jobs must be between 1 and 16")):
        r = subprocess.run([sys.executable, "-m", "core.train", *args], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 2 and message in r.stderr


# --- calibration -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_temperature_is_fitted_saved_and_used(tiny_artifacts, mnist, name):
    model = load_models(tiny_artifacts, [name])[name]
    cal = art.read("metrics", name, tiny_artifacts)["calibration"]
    assert model.temperature == pytest.approx(cal["temperature"])
    assert cal["val_nll_after"] <= cal["val_nll_before"] + 1e-9  # fitted to lower validation NLL
    x = scale(mnist[1][0][:50])
    raw, calibrated = model.predict_proba(x), model.calibrated_proba(x)
    np.testing.assert_allclose(calibrated.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(raw.argmax(1), calibrated.argmax(1))  # the answer never changes
    for r, c in zip(raw[:5], calibrated[:5]):
        np.testing.assert_allclose(c, temper_by_hand(r, model.temperature), atol=1e-5)
    for tta, t in ((False, model.temperature), (True, model.tta_temperature)):
        result = predict_image(np.pad(mnist[1][0][0], 40), {name: model}, tta=tta)
        uncalibrated = predict_image(np.pad(mnist[1][0][0], 40), {name: model}, calibrated=False, tta=tta)
        assert result["predictions"][name]["digit"] == uncalibrated["predictions"][name]["digit"]
        np.testing.assert_allclose(result["predictions"][name]["probs"],
                                   temper_by_hand(uncalibrated["predictions"][name]["probs"], t), atol=1e-5)


def tta_by_hand(model, x28: np.ndarray) -> np.ndarray:
    """Test-time augmentation the slow way: each warp built from its angle and slant, one image at a time."""
    from core.pixels import TTA_WARPS, affine

    total = np.zeros(10)
    for deg, shear, size in TTA_WARPS:
        c, s = math.cos(math.radians(deg)) / (1 + size), math.sin(math.radians(deg)) / (1 + size)
        view = np.clip(affine(x28[None].astype(np.float32), np.array([[c, s + shear, 13.5], [-s, c, 13.5]])), 0, 1)
        total += model.predict_proba(view)[0]
    return total / len(TTA_WARPS)


@pytest.mark.parametrize("name", MODELS)
def test_the_draw_pages_reading_has_its_own_fitted_temperature(tiny_artifacts, mnist, name):
    model = load_models(tiny_artifacts, [name])[name]
    metrics = art.read("metrics", name, tiny_artifacts)
    cal = metrics["calibration"]
    assert model.tta_temperature == pytest.approx(cal["tta_temperature"])
    assert cal["val_ece_tta_before"] >= 0 and 0 <= cal["test_ece_tta_after"] <= 1
    x = scale(mnist[1][0][:40])
    raw = model.tta_proba(x, calibrated=False)
    for i in range(3):  # the mean over the views, against one built by hand
        np.testing.assert_allclose(raw[i], tta_by_hand(model, x[i]), atol=1e-5)
    np.testing.assert_allclose(model.tta_proba(x), np.stack([temper_by_hand(r, model.tta_temperature) for r in raw]),
                               atol=1e-5)
    test_x, test_y = scale(mnist[1][0]), mnist[1][1]
    right = sum(int((model.tta_proba(test_x[i:i + 2000]).argmax(1) == test_y[i:i + 2000]).sum())
                for i in range(0, len(test_y), 2000))
    assert metrics["tta_test_accuracy"] == pytest.approx(right / len(test_y))


def test_a_model_saved_without_a_temperature_answers_raw(own_artifacts, mnist):
    path = own_artifacts / "numpy_mlp" / "settings.json"
    meta = json.loads(path.read_text())
    del meta["temperature"]
    path.write_text(json.dumps(meta))
    model = load_models(own_artifacts, ["numpy_mlp"])["numpy_mlp"]
    x = scale(mnist[1][0][:5])
    assert model.temperature is None
    np.testing.assert_array_equal(model.calibrated_proba(x), model.predict_proba(x))
    del meta["tta_temperature"]
    path.write_text(json.dumps(meta))
    model = load_models(own_artifacts, ["numpy_mlp"])["numpy_mlp"]
    assert model.tta_temperature is None  # saved before test-time augmentation had a temperature: raw means
    np.testing.assert_array_equal(model.tta_proba(x), model.tta_proba(x, calibrated=False))
    meta["temperature"] = -1
    path.write_text(json.dumps(meta))
    with pytest.raises(art.ArtifactError, match="temperature"):
        load_models(own_artifacts, ["numpy_mlp"])


@pytest.mark.parametrize("name, expected", [
    ("numpy_mlp", 784 * 128 + 128 * 10),
    ("keras_mlp", 784 * 128 + 128 * 64 + 64 * 10),
    ("lenet", 28 * 28 * 16 * 25 + 10 * 10 * 32 * 16 * 25 + 800 * 120 + 120 * 84 + 84 * 10),
])
def test_multiply_adds_count_the_forward_pass(tiny_artifacts, name, expected):
    assert load_models(tiny_artifacts, [name])[name].multiply_adds() == expected
    assert art.read("metrics", name, tiny_artifacts)["multiply_adds"] == expected


# --- what the pages show, recomputed --------------------------------------------------------------
@pytest.fixture
def app(fresh_caches):
    from streamlit.testing.v1 import AppTest

    def run(page: str):
        at = AppTest.from_file(HOME, default_timeout=90).run()
        if page != "home":
            at.switch_page(f"views/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return run


def frame(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.mark.parametrize("page", ["home", "results"])
def test_intervals_and_seed_spread_shown_match_a_recomputation(artifacts, app, page):
    table = frame(app(page), "95% interval")
    for name, (_, row) in zip(MODELS, table.iterrows()):
        m = art.read("metrics", name, artifacts)
        low, high = wilson_by_search(m["test_size"] - m["errors"], m["test_size"])
        assert row["95% interval"] == f"{100 * low:.2f} – {100 * high:.2f}%"
        seeds = art.read("seeds", name, artifacts)["accuracy"]
        mean = sum(seeds) / len(seeds)
        sd = math.sqrt(sum((a - mean) ** 2 for a in seeds) / (len(seeds) - 1))
        assert row["Over seeds"] == f"{100 * mean:.2f} ± {100 * sd:.2f}% ({len(seeds)})"


def test_pairwise_tests_shown_match_a_recomputation(artifacts, app):
    at = app("results")
    shown = frame(at, "McNemar p")
    assert len(shown) == len(PAIRS)
    for (a, b), (_, row) in zip(PAIRS, shown.iterrows()):
        pa, pb = predictions(artifacts, a), predictions(artifacts, b)
        only_a, only_b, p = mcnemar_by_hand(pa["pred"] == pa["label"], pb["pred"] == pb["label"])
        assert (row["A"], row["B"]) == (SPECS[a].short, SPECS[b].short)
        assert (row["Only A right"], row["Only B right"]) == (only_a, only_b)
        assert row["McNemar p"] == pytest.approx(p, rel=1e-9)
        sa, sb = (art.read("seeds", n, artifacts)["accuracy"] for n in (a, b))
        ahead = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in sa for y in sb) / (len(sa) * len(sb))
        assert row["A ahead (seed pairs)"] == pytest.approx(ahead)
    verdicts = "\n".join(m.value for m in at.markdown if ":material/" in m.value)
    for a, b in PAIRS:
        assert SPECS[a].title in verdicts and SPECS[b].title in verdicts


def test_calibration_shown_matches_a_recomputation(artifacts, app):
    shown = frame(app("calibration"), "ECE before")
    for name, (_, row) in zip(MODELS, shown.iterrows()):
        p = predictions(artifacts, name)
        t = art.read("metrics", name, artifacts)["calibration"]["temperature"]
        probs = np.asarray(p["probs"], np.float32)
        assert row["T"] == pytest.approx(t)
        assert row["ECE before"] == pytest.approx(100 * ece_by_hand(probs, p["label"]), abs=1e-6)
        tempered = np.array([temper_by_hand(r, t) for r in probs])
        assert row["ECE after"] == pytest.approx(100 * ece_by_hand(tempered, p["label"]), abs=1e-3)


def test_calibration_page_gives_the_draw_pages_own_temperature(artifacts, app):
    said = "\n".join(m.value for m in app("calibration").markdown if m.value.startswith("**On the Draw page**"))
    for name in MODELS:
        m = art.read("metrics", name, artifacts)
        assert (f"{SPECS[name].short} *T* = {m['calibration']['tta_temperature']:.2f}, MNIST test "
                f"{100 * m['tta_test_accuracy']:.2f}% right with an ECE of "
                f"{100 * m['calibration']['test_ece_tta_after']:.2f}%") in said


def test_cost_table_shows_each_models_cost(artifacts, app):
    shown = frame(app("results"), "Multiply-adds / image")
    for name, (_, row) in zip(MODELS, shown.iterrows()):
        m = art.read("metrics", name, artifacts)
        seeds = art.read("seeds", name, artifacts)
        assert row["Multiply-adds / image"] == m["multiply_adds"]
        assert row["Accuracy"] == pytest.approx(100 * float(np.mean(seeds["accuracy"])))
        assert row["Training time"] == pytest.approx(float(np.mean(seeds["train_seconds"])))


@pytest.mark.parametrize("page, note", [("home", "No per-seed results"), ("results", "No per-seed results"),
                                        ("calibration", "saved before temperature scaling")])
def test_artifacts_from_before_seeds_still_show_with_a_note(own_artifacts, app, page, note):
    for name in MODELS:
        (own_artifacts / name / "seeds.npz").unlink()
        path = own_artifacts / name / "metrics.json"
        m = json.loads(path.read_text())
        for key in ("calibration", "multiply_adds", "single_image_ms"):
            m.pop(key)
        path.write_text(json.dumps(m))
    at = app(page)
    assert not at.error, [e.value for e in at.error]
    assert note in "\n".join(i.value for i in at.info)
    assert "python -m core.train" in "\n".join(i.value for i in at.info)
