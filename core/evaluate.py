"""Scoring a trained model on the test set: the figures, predictions and mistakes that
``core.train`` saves and the dashboard's Train page shows for a model trained live.
The test set is used only here, after training, never for choices.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from core.data import Split
from core.metrics import accuracy, confusion, cross_entropy, per_class_accuracy


@dataclass
class Evaluation:
    metrics: dict  # as metrics.json (core.artifacts)
    predictions: dict  # as predictions.npz
    misclassified: dict  # as misclassified.npz


def evaluate(model, test: Split, **extra) -> Evaluation:
    """Test-set metrics, predictions and misclassified examples for one trained model.

    ``extra`` (training time, epochs, training-set size...) is added to the metrics.
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
        "inference_ms_per_image": 1000 * batch_seconds / len(test),
        **extra,
    }
    predictions = {"probs": probs.astype(np.float16), "pred": pred, "label": test.y.astype(np.uint8)}
    misclassified = {
        "index": wrong.astype(np.int32),
        "image": np.round(test.x[wrong] * 255).astype(np.uint8),
        "label": test.y[wrong].astype(np.uint8),
        "pred": pred[wrong],
        "probs": probs[wrong].astype(np.float32),
    }
    return Evaluation(metrics, predictions, misclassified)
