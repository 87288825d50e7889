"""Measure the project against the right baselines: ``python -m tools.bench [--quick] [--json OUT]``.

Every figure is set beside the baseline that makes it meaningful, in one run on one machine:

    test accuracy          per model, on the 10,000 test images
    training epoch         the NumPy MLP against Keras training the same 784-128-10 network
                           (same batch size, augmentation off), seconds per epoch
    GFLOP/s                the NumPy MLP's training arithmetic rate against this machine's
                           own NumPy matrix multiply
    augmentation           seconds to warp one epoch of training images (core.augment), on
                           two threads against one
    full training          each model's training time as recorded by ``python -m core.train``
                           in the measured artifacts, against the 5-minute budget
    single-image latency   preprocess + all three models as the Draw page reads (each digit and four
                           warps of it), p50/p95, against calling Keras's
                           ``model.predict`` per image
    Keras entry points     one image through each Keras model's direct call, ``predict`` and
                           ``predict_on_batch``, p50/p95
    batch throughput       images per second per model on the 10,000 test images
    app                    Streamlit cold start until the home page has rendered in Chromium,
                           and the server's peak memory after a Draw-page prediction
                           (driven through tools.browser)

Prints a Markdown table (the README's) and writes everything as JSON
(default ``bench-results/bench.json``). ``--quick`` uses subsets and fewer repeats (CI);
its figures are only sanity checks. Timings are wall-clock on whatever else the machine
is doing: take the full run on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import functools
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tools import browser

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "bench-results" / "bench.json"
BATCH_SIZE = 128  # both sides of the training comparison
HIDDEN = 128


@dataclasses.dataclass(frozen=True)
class Config:
    train_images: int  # images per timed training epoch (55,000 = the whole training split)
    epochs: int  # timed epochs per side, after one warm-up epoch each; the median is reported
    matmul_n: int  # square float32 matrix size for the machine's matmul rate
    matmul_repeats: int
    latency_images: int  # single-image predictions timed, after warm-up; also per Keras entry point
    baseline_images: int  # the same with per-image model.predict (slow: fewer)
    batch_images: int  # test images for accuracy and throughput
    batch_repeats: int


FULL = Config(55_000, 5, 2048, 10, 500, 100, 10_000, 3)
QUICK = Config(5_000, 2, 1024, 3, 40, 8, 10_000, 1)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000, q))


# --- model quality and batch speed ----------------------------------------------------------
def accuracy_per_model(models: dict, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Fraction of ``x`` each model classifies correctly."""
    return {name: float(np.mean(m.predict(x) == y)) for name, m in models.items()}


def batch_throughput(models: dict, x: np.ndarray, repeats: int = 3) -> dict[str, float]:
    """Images per second for ``predict_proba`` on the whole of ``x`` at once, best of ``repeats``."""
    out = {}
    for name, m in models.items():
        m.predict_proba(x[:256])  # warm-up
        best = min(_timed(m.predict_proba, x) for _ in range(repeats))
        out[name] = len(x) / best
    return out


def _timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


# --- training: NumPy against Keras, and against the hardware --------------------------------
def numpy_trainer(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """One training epoch of core's NumPy MLP (augmentation off), as a callable, warmed up."""
    from core.models.numpy_mlp import NumpyMLP, NumpyMLPSettings
    from core.settings import with_training

    settings = with_training(NumpyMLPSettings(hidden=HIDDEN), batch_size=BATCH_SIZE, augment=False, seed=seed)
    model = NumpyMLP(settings)
    rng = np.random.default_rng(seed)

    def epoch():
        model.train_epoch(x, y, settings.train.lr, rng)

    epoch()  # warm-up: BLAS threads, first-touch page faults
    return epoch


def keras_trainer(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """The same network in Keras: 784-128(relu)-10(softmax), SGD with Nesterov momentum, batch 128;
    one ``model.fit(epochs=1, verbose=0)`` as a callable, after a warm-up epoch."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(seed)
    net = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(HIDDEN, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    net.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = x.reshape(len(x), 784)

    def epoch():
        net.fit(x, y, batch_size=BATCH_SIZE, epochs=1, shuffle=True, verbose=0)

    epoch()  # warm-up: traces the train function
    return epoch


@functools.lru_cache(maxsize=1)
def _openblas():
    """(get, set) for the number of threads of the OpenBLAS NumPy has loaded, or None."""
    import ctypes

    libs = {line.split()[-1] for line in _lines("/proc/self/maps") if "openblas" in line.lower() and ".so" in line}
    for path in sorted(libs):
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", "_64_", ""):
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    return get, set_
    return None


@contextmanager
def blas_threads(n: int):
    """NumPy's OpenBLAS limited to ``n`` threads inside the block; yields False where it cannot be."""
    fns = _openblas()
    if fns is None:
        yield False
        return
    get, set_ = fns
    before = get()
    set_(n)
    try:
        yield True
    finally:
        set_(before)


def training_epoch(x: np.ndarray, y: np.ndarray, epochs: int) -> dict:
    """Median seconds per epoch on each side, timed alternately so that background load hits both
    alike; the ratio is Keras over NumPy (above 1: the NumPy MLP is faster). Also the NumPy MLP
    with OpenBLAS held to one thread: batch-128 products are small, and threads that wait for
    each other lose most on a busy machine."""
    numpy_epoch = numpy_trainer(x, y)

    def numpy_one_thread():
        with blas_threads(1):
            numpy_epoch()

    sides = {"numpy": numpy_epoch, "keras": keras_trainer(x, y)}
    with blas_threads(1) as can:
        if can:
            sides["numpy_1_thread"] = numpy_one_thread
    times = {k: [] for k in sides}
    for _ in range(epochs):
        for k, epoch in sides.items():
            times[k].append(_timed(epoch))
    med = {k: float(np.median(v)) for k, v in times.items()}
    out = {"images": len(x), "batch_size": BATCH_SIZE, "epochs_timed": epochs,
           "numpy_s": med["numpy"], "keras_s": med["keras"], "keras_over_numpy": med["keras"] / med["numpy"]}
    if "numpy_1_thread" in med:
        out["numpy_1_thread_s"] = med["numpy_1_thread"]
    return out


def augment_epoch(x: np.ndarray, repeats: int) -> dict:
    """Median seconds for one epoch's random warps of ``x``, on two threads and on one."""
    from core.augment import augment

    out = {"images": len(x)}
    for threads in (2, 1):
        rng = np.random.default_rng(0)
        augment(x[:4096], rng, threads=threads)  # warm-up
        out[f"threads_{threads}_s"] = float(np.median([_timed(augment, x, rng, threads=threads) for _ in range(repeats)]))
    return out


def recorded_training(manifest: dict, folder: Path) -> dict:
    """Training seconds per model as ``python -m core.train`` measured them when it made these artifacts."""
    from core import artifacts

    out = {}
    for name in manifest.get("models", {}):
        m = artifacts.read("metrics", name, folder)
        out[name] = {"seconds": float(m["train_seconds"]), "epochs": int(m["epochs"]), "images": int(m["train_size"])}
    run = manifest.get("run") or {}  # the whole command's wall time; absent before multi-seed runs
    return {"models": out, "total_s": sum(v["seconds"] for v in out.values()), "run_s": run.get("seconds"),
            "seeds": run.get("seeds", 1), "jobs": run.get("jobs", 1), "run_models": run.get("models", list(out))}


def mlp_train_flops_per_image(hidden: int = HIDDEN) -> int:
    """Multiply-add FLOPs of one training step per image: forward x@W1, h@W2;
    backward dz2@W2.T, x.T@dz1, h.T@dz2 (no gradient for the input). Elementwise work not counted."""
    return 2 * (2 * 784 * hidden + 3 * hidden * 10)


def matmul_gflops(n: int, repeats: int, seed: int = 0) -> float:
    """This machine's float32 NumPy matrix multiply rate: best of ``repeats`` (n x n) @ (n x n)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up
    return 2 * n**3 / min(_timed(np.matmul, a, b) for _ in range(repeats)) / 1e9


def step_matmul_gflops(repeats: int = 200, seed: int = 0) -> float:
    """The rate of the five matrix multiplies of one batch-128 training step alone: the most
    the MLP could reach at this batch size if everything else were free."""
    rng = np.random.default_rng(seed)
    x, w1 = rng.random((BATCH_SIZE, 784), np.float32), rng.random((784, HIDDEN), np.float32)
    h, w2 = rng.random((BATCH_SIZE, HIDDEN), np.float32), rng.random((HIDDEN, 10), np.float32)
    d2 = rng.random((BATCH_SIZE, 10), np.float32)

    def step():
        x @ w1, h @ w2, d2 @ w2.T, x.T @ h, h.T @ d2

    def loop():
        for _ in range(repeats):
            step()

    step()  # warm-up
    seconds = min(_timed(loop) for _ in range(3)) / repeats
    return mlp_train_flops_per_image() * BATCH_SIZE / seconds / 1e9


def gflops(training: dict, cfg: Config) -> dict:
    """Achieved training GFLOP/s of the NumPy MLP against the machine's matmul GFLOP/s."""
    achieved = mlp_train_flops_per_image() * training["images"] / training["numpy_s"] / 1e9
    peak = matmul_gflops(cfg.matmul_n, cfg.matmul_repeats)
    out = {"numpy_mlp_train": achieved, "matmul": peak, "matmul_n": cfg.matmul_n,
           "fraction_of_matmul": achieved / peak, "step_matmuls_only": step_matmul_gflops()}
    if "numpy_1_thread_s" in training:
        out["numpy_mlp_train_1_thread"] = achieved * training["numpy_s"] / training["numpy_1_thread_s"]
    return out


# --- single-image latency ---------------------------------------------------------------------
def canvas_images(digits: np.ndarray, size: int = 280) -> list[np.ndarray]:
    """MNIST digits as the Draw page's canvas returns a drawing: RGBA (size, size, 4) uint8,
    white pen on a transparent background (the ink is in alpha), ten times MNIST's resolution."""
    from PIL import Image

    out = []
    for d in digits:
        rgba = np.full((size, size, 4), 255, np.uint8)
        rgba[..., 3] = np.asarray(Image.fromarray(d).resize((size, size), Image.Resampling.BILINEAR))
        out.append(rgba)
    return out


def _predict_per_image_baseline(models: dict):
    """Preprocess, then every model on its own with the textbook call: Keras ``model.predict``."""
    from core.models.keras_base import KerasClassifier
    from core.preprocess import to_mnist

    def run(image):
        x = to_mnist(image)[None]
        for m in models.values():
            if isinstance(m, KerasClassifier):  # the textbook call is Keras's own, on the network itself
                m.net.predict(x, verbose=0)
            else:
                m.predict_proba(x)

    return run


def single_image_latency(models: dict, images: list[np.ndarray], n: int, baseline_n: int) -> dict:
    """p50/p95 milliseconds of ``core.predict.predict_image`` (preprocess + all models, as the Draw page
    reads: test-time augmented) on one canvas image, against the same with per-image ``model.predict``;
    ratio = baseline / ours. Also the p50 of one reading (``tta=False``)."""
    from core.predict import predict_image

    baseline = _predict_per_image_baseline(models)
    pick = [images[i % len(images)] for i in range(max(n, baseline_n))]
    for image in pick[:10]:  # warm-up: first calls trace and allocate
        predict_image(image, models)
        baseline(image)
    ours = [_timed(predict_image, image, models) for image in pick[:n]]
    once = functools.partial(predict_image, tta=False)
    one_reading = [_timed(once, image, models) for image in pick[:n]]
    base = [_timed(baseline, image) for image in pick[:baseline_n]]
    p50, p95 = percentile_ms(ours, 50), percentile_ms(ours, 95)
    b50, b95 = percentile_ms(base, 50), percentile_ms(base, 95)
    return {"images": n, "baseline_images": baseline_n, "p50_ms": p50, "p95_ms": p95,
            "baseline_p50_ms": b50, "baseline_p95_ms": b95, "baseline_over_p50": b50 / p50,
            "baseline_over_p95": b95 / p95, "one_reading_p50_ms": percentile_ms(one_reading, 50),
            "parts_p50_ms": latency_parts(models, pick[:n])}


def latency_parts(models: dict, images: list[np.ndarray]) -> dict[str, float]:
    """Where a single-image prediction's time goes: p50 ms of preprocessing, of making the test-time
    augmentation views (once, for all models) and of each model's reading of them, in one batch."""
    from core.pixels import views
    from core.preprocess import to_mnist

    out = {"preprocess": percentile_ms([_timed(to_mnist, im) for im in images], 50)}
    x = to_mnist(images[0])[None]
    out["views"] = percentile_ms([_timed(views, x) for _ in images], 50)
    v = views(x)
    for name, m in models.items():
        out[name] = percentile_ms([_timed(m.read_views, v) for _ in images], 50)
    return out


def keras_entry_points(models: dict, x: np.ndarray, n: int, predict_n: int) -> dict:
    """p50/p95 ms of one image ``x`` (shape (1, 28, 28)) through each Keras model's three entry points:
    the direct call ``net(x)``, ``net.predict`` (slow: it sets up a data pipeline every call; timed
    ``predict_n`` times) and ``net.predict_on_batch`` (a compiled graph, cached after the first call),
    beside ``predict_proba`` (the project's one compiled forward pass)."""
    from core.models.keras_base import KerasClassifier

    out = {}
    for name, m in models.items():
        if not isinstance(m, KerasClassifier):
            continue
        net = m.net  # Keras's own entry points, on the network itself
        calls = {"direct": (net, {"training": False}, n), "predict": (net.predict, {"verbose": 0}, predict_n),
                 "predict_on_batch": (net.predict_on_batch, {}, n), "predict_proba": (m.predict_proba, {}, n)}
        out[name] = {}
        for call, (fn, kwargs, count) in calls.items():
            for _ in range(5):  # warm-up: first calls build graphs and caches
                fn(x, **kwargs)
            seconds = [_timed(fn, x, **kwargs) for _ in range(count)]
            out[name] |= {f"{call}_p50_ms": percentile_ms(seconds, 50), f"{call}_p95_ms": percentile_ms(seconds, 95)}
    return {"images": n, "predict_images": predict_n, "models": out}


# --- the app in a real browser ------------------------------------------------------------------
async def _app(artifacts_path, digit: int, timeout_s: float) -> dict:
    async with browser.launch_chromium() as chromium:
        page = await chromium.new_page(viewport={"width": 1400, "height": 1000})
        with browser.app_server(artifacts_path, timeout_s) as server:
            await browser.open_page(page, server.url, idle=False, timeout_ms=timeout_s * 1000)
            cold = time.perf_counter() - server.started
            await browser.open_draw(page, server.url, timeout_s * 1000)
            draw_page = time.perf_counter() - server.started - cold
            lifted = await browser.draw(page, browser.DIGITS[digit])
            shown = await browser.read_predictions(page, timeout_s * 1000)
            latency = time.perf_counter() - lifted
            peak = browser.tree_peak_rss_mb(server.proc.pid)
    return {"cold_start_s": cold, "draw_page_s": draw_page, "stroke_to_prediction_s": latency,
            "peak_rss_mb": peak, "digit_drawn": digit, "digits_shown": shown}


def app_measurements(artifacts_path=None, timeout_s: float = 120) -> dict:
    """Cold start (server spawn -> home page rendered in Chromium) and the server's peak memory after
    the Draw page has loaded the models and answered one drawn digit."""
    return asyncio.run(_app(artifacts_path, 1, timeout_s))


# --- the run, the table, the command ------------------------------------------------------------
def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")), "")
    return {
        "cpu": cpu or platform.processor(), "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
    }


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def run(cfg: Config, artifacts_path=None, skip_app: bool = False, log=_log) -> dict:
    """Every measurement, in one dict (what ``--json`` writes)."""
    from core import artifacts, load_models
    from core.data import load_mnist, scale, splits

    results = {"meta": {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        "quick": cfg == QUICK, "config": dataclasses.asdict(cfg), "machine": machine()}}
    folder = artifacts.artifacts_dir(artifacts_path)
    manifest = artifacts.read("manifest", folder=folder)
    results["meta"]["artifacts"] = {"path": str(folder), "created": manifest.get("created"),
                                    "models": manifest.get("models", {})}
    data = load_mnist()
    (_, _), (x_test, y_test) = data
    x_test, y_test = scale(x_test[: cfg.batch_images]), y_test[: cfg.batch_images]
    log("loading models")
    models = load_models(folder)

    log("test accuracy")
    results["accuracy"] = accuracy_per_model(models, x_test, y_test)
    log("batch throughput")
    results["throughput"] = {"images": len(x_test), "images_per_s": batch_throughput(models, x_test, cfg.batch_repeats)}
    log("single-image latency")
    results["latency"] = single_image_latency(models, canvas_images(data[1][0][:50]), cfg.latency_images,
                                              cfg.baseline_images)
    log("Keras entry points")
    results["keras_entry_points"] = keras_entry_points(models, x_test[:1], cfg.latency_images, cfg.baseline_images)
    del models
    log(f"training epochs: NumPy against Keras on {cfg.train_images:,} images")
    train, _, _ = splits(data, subset=cfg.train_images)
    results["training"] = training_epoch(train.x, train.y, cfg.epochs)
    log("GFLOP/s")
    results["gflops"] = gflops(results["training"], cfg)
    log(f"augmentation: one epoch of {cfg.train_images:,} images")
    results["augment"] = augment_epoch(train.x, cfg.epochs)
    results["full_training"] = recorded_training(manifest, folder)
    if skip_app:
        results["app"] = {"skipped": "--skip-app"}
    elif not browser.chromium_available():
        results["app"] = {"skipped": f"no Playwright or no Chromium at {browser.CHROMIUM}"}
    else:
        log("app: cold start and memory")
        results["app"] = app_measurements(folder)
    return results


def format_table(r: dict) -> str:
    """The results as a Markdown table: measurement, result, baseline, ratio."""
    from core.models import SPECS

    rows = []
    for name, acc in r["accuracy"].items():
        rows.append((f"Test accuracy: {SPECS[name].title}", f"{acc:.2%}", "", ""))
    t = r["training"]
    rows.append((f"Seconds per training epoch, 784-128-10, batch {t['batch_size']}, {t['images']:,} images",
                 f"NumPy {t['numpy_s']:.2f} s", f"Keras {t['keras_s']:.2f} s",
                 f"NumPy {t['keras_over_numpy']:.2f}x as fast"))
    g = r["gflops"]
    rows.append(("NumPy MLP training arithmetic rate", f"{g['numpy_mlp_train']:.1f} GFLOP/s",
                 f"NumPy matmul {g['matmul']:.1f} GFLOP/s ({g['matmul_n']}²)", f"{g['fraction_of_matmul']:.0%} of it"))
    rows.append(("  the same batch-128 matrix products alone", f"{g['step_matmuls_only']:.1f} GFLOP/s", "", ""))
    if "numpy_1_thread_s" in t:
        rows.append(("  NumPy epoch with OpenBLAS held to 1 thread", f"{t['numpy_1_thread_s']:.2f} s",
                     f"Keras {t['keras_s']:.2f} s", f"NumPy {t['keras_s'] / t['numpy_1_thread_s']:.2f}x as fast"))
    a = r["augment"]
    rows.append((f"Augmentation, seconds per epoch of {a['images']:,} images", f"{a['threads_2_s']:.2f} s (2 threads)",
                 f"{a['threads_1_s']:.2f} s (1 thread)", f"{a['threads_1_s'] / a['threads_2_s']:.2f}x as fast"))
    ft = r["full_training"]
    each = ", ".join(f"{k} {v['seconds']:.0f} s ({v['epochs']} epochs)" for k, v in ft["models"].items())
    if ft.get("run_s"):
        # the last run may have retrained some models only (--models lenet): its time is theirs alone
        which = "" if set(ft["run_models"]) >= set(ft["models"]) else f", {' and '.join(ft['run_models'])} only"
        rows.append((f"Full training run as recorded (core.train, {ft['seeds']} seeds, {ft['jobs']} workers{which})",
                     f"{ft['run_s'] / 60:.1f} min; kept models: {each}", "budget 15 min",
                     f"{ft['run_s'] / 900:.0%} of it"))
    else:
        rows.append(("Full training as recorded in the artifacts (core.train)", f"{ft['total_s']:.0f} s: {each}",
                     "budget 300 s", f"{ft['total_s'] / 300:.0%} of it"))
    lat = r["latency"]
    rows.append(("Single image, preprocess + 3 models: p50", f"{lat['p50_ms']:.1f} ms",
                 f"model.predict per image {lat['baseline_p50_ms']:.1f} ms", f"{lat['baseline_over_p50']:.1f}x faster"))
    rows.append(("Single image, preprocess + 3 models: p95", f"{lat['p95_ms']:.1f} ms",
                 f"model.predict per image {lat['baseline_p95_ms']:.1f} ms", f"{lat['baseline_over_p95']:.1f}x faster"))
    parts = ", ".join(f"{k} {v:.2f}" for k, v in lat["parts_p50_ms"].items())
    rows.append(("  p50 of each part, ms (each model: 5 readings, test-time augmentation)", parts, "", ""))
    if "one_reading_p50_ms" in lat:
        rows.append(("  the same, each model reading the digit once: p50", f"{lat['one_reading_p50_ms']:.1f} ms", "", ""))
    for name, e in r["keras_entry_points"]["models"].items():
        rows.append((f"One image through Keras, p50: {SPECS[name].title}",
                     f"predict_proba {e['predict_proba_p50_ms']:.2f} ms (predict_on_batch "
                     f"{e['predict_on_batch_p50_ms']:.2f}, direct call {e['direct_p50_ms']:.2f})",
                     f"model.predict {e['predict_p50_ms']:.1f} ms",
                     f"{e['predict_p50_ms'] / e['predict_proba_p50_ms']:.1f}x faster"))
    n = r["throughput"]["images"]
    for name, ips in r["throughput"]["images_per_s"].items():
        rows.append((f"Batch throughput, {n:,} test images: {SPECS[name].title}", f"{ips:,.0f} images/s", "", ""))
    app = r["app"]
    if "skipped" in app:
        rows.append(("App (cold start, memory)", f"skipped: {app['skipped']}", "", ""))
    else:
        rows.append(("App cold start: server start -> home page rendered", f"{app['cold_start_s']:.1f} s", "", ""))
        rows.append(("App peak memory (VmHWM) after a Draw prediction", f"{app['peak_rss_mb']:.0f} MB", "", ""))
    head = ("Measurement", "Result", "Baseline", "Ratio")
    widths = [max(len(str(row[i])) for row in (head, *rows)) for i in range(4)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    m = r["meta"]["machine"]
    note = (f"\n{'Quick run (subsets): sanity figures only. ' if r['meta']['quick'] else ''}"
            f"{m['cpu']}, {m['cores']} cores, load average {m['load_average']} at start; {r['meta']['date']}.")
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]) + note


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI-sized: training subsets, fewer repeats (well under 2 min)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="OUT",
                   help=f"where to write the results (default: {DEFAULT_JSON.relative_to(ROOT)})")
    p.add_argument("--artifacts", metavar="DIR", help="trained models to measure (default: artifacts/)")
    p.add_argument("--skip-app", action="store_true", help="leave out the Streamlit cold start and memory")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from core import ArtifactError
    from core.data import DataError

    start = time.perf_counter()
    try:
        results = run(QUICK if args.quick else FULL, args.artifacts, args.skip_app)
    except (ArtifactError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results["meta"]["seconds"] = time.perf_counter() - start
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, default=float))
    print(format_table(results))
    _log(f"\nwritten to {args.json} in {results['meta']['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
