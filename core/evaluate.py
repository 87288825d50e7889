"""Scoring a trained model on the test set: the figures, predictions and mistakes that
``core.train`` saves and the dashboard's Train page shows for a model trained live, and one
seed's row of the seeds table (``seeds.npz``).
The test set is used only here, after training, never for choices.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from core.data import Split
from core.metrics import accuracy, confusion, cross_entropy, per_class_accuracy
from core.stats import ece, temper


@dataclass
class Evaluation:
    metrics: dict  # as metrics.json (core.artifacts)
    predictions: dict  # as predictions.npz
    misclassified: dict  # as misclassified.npz


SINGLE_CALLS = 50  # one-image predictions timed for the median: what a Draw answer costs


def single_image_ms(model, x: np.ndarray) -> float:
    """Median milliseconds for one image through ``predict_proba``, after one warm-up call."""
    model.predict_proba(x[:1])
    times = []
    for i in range(SINGLE_CALLS):
        start = time.perf_counter()
        model.predict_proba(x[i % len(x)][None])
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def evaluate(model, test: Split, calibration: dict | None = None, tta: bool = True, **extra) -> Evaluation:
    """Test-set metrics, predictions and misclassified examples for one trained model.

    ``calibration`` is what ``model.calibrate(val)`` returned, if it was called; the test
    set's calibration error before and after is added to it here, and, for a model with a
    ``tta_temperature``, the accuracy and calibration error of its test-time augmented reading (five
    times the reading; ``tta=False`` leaves them out). ``extra`` (training time,
    epochs, training-set size...) is added to the metrics. Probabilities are saved raw,
    so the calibration can be recomputed from them and the temperature.
    """
    start = time.perf_counter()
    probs = model.predict_proba(test.x)
    batch_seconds = time.perf_counter() - start
    pred = probs.argmax(1).astype(np.uint8)
    cm = confusion(test.y, pred)
    wrong = np.flatnonzero(pred != test.y)
    metrics = {
        "model": model.name,
        "test_accuracy": accuracy(probs, test.y),
        "test_loss": cross_entropy(probs, test.y),
        "errors": len(wrong),
        "test_size": len(test),
        "per_class_accuracy": per_class_accuracy(cm).tolist(),
        "confusion": cm.tolist(),
        "params": model.num_params(),
        "multiply_adds": model.multiply_adds(),
        "inference_ms_per_image": 1000 * batch_seconds / len(test),
        "single_image_ms": single_image_ms(model, test.x),
        **extra,
    }
    metrics |= test_calibration(model, test, probs, calibration, tta)
    predictions = {"probs": probs.astype(np.float16), "pred": pred, "label": test.y.astype(np.uint8)}
    misclassified = {
        "index": wrong.astype(np.int32),
        "image": np.round(test.x[wrong] * 255).astype(np.uint8),
        "label": test.y[wrong].astype(np.uint8),
        "pred": pred[wrong],
        "probs": probs[wrong].astype(np.float32),
    }
    return Evaluation(metrics, predictions, misclassified)


def test_calibration(model, test: Split, probs: np.ndarray, calibration: dict | None, tta: bool = True) -> dict:
    """The metrics' entries about the fitted temperatures: "calibration" (``calibration`` plus the test
    set's calibration error before and after) and, for a model with a ``tta_temperature``,
    "tta_test_accuracy", the Draw page's test-time augmented reading, with its calibration error."""
    out = {}
    if calibration is not None and model.temperature is not None:
        out["calibration"] = calibration | {
            "test_ece_before": ece(probs, test.y), "test_ece_after": ece(temper(probs, model.temperature), test.y),
        }
    if tta and model.tta_temperature is not None:
        averaged = model.tta_proba(test.x)
        out["tta_test_accuracy"] = accuracy(averaged, test.y)
        if "calibration" in out:
            out["calibration"]["test_ece_tta_after"] = ece(averaged, test.y)
    return out


def seed_row(seed: int, metrics: dict, predictions: dict) -> dict:
    """One seed's line in ``seeds.npz``: its test figures and its predictions."""
    return {"seed": seed, "accuracy": metrics["test_accuracy"], "per_class_accuracy": metrics["per_class_accuracy"],
            "confusion": metrics["confusion"], "train_seconds": metrics["train_seconds"],
            "epochs": metrics.get("epochs") or 1, "pred": predictions["pred"], "label": predictions["label"]}


def seed_table(name: str, rows: list[dict]) -> dict:
    """The arrays of ``seeds.npz`` from one row per seed (see ``core.artifacts``)."""
    return {
        "model": np.array(name), "seed": np.array([r["seed"] for r in rows], np.int32),
        "accuracy": np.array([r["accuracy"] for r in rows], np.float64),
        "per_class_accuracy": np.array([r["per_class_accuracy"] for r in rows], np.float64),
        "confusion": np.array([r["confusion"] for r in rows], np.int32),
        "train_seconds": np.array([r["train_seconds"] for r in rows], np.float64),
        "epochs": np.array([r["epochs"] for r in rows], np.int32),
        "pred": np.stack([np.asarray(r["pred"], np.uint8) for r in rows]), "label": np.asarray(rows[0]["label"], np.uint8),
    }
