"""Loss and accuracy figures computed the same way for every model."""

from __future__ import annotations

import numpy as np


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels; probs (n, 10), y (n,)."""
    p = probs[np.arange(len(y)), y.astype(np.int64)]
    return float(-np.mean(np.log(np.clip(p, 1e-7, 1.0))))


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(probs.argmax(1) == y))


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int = 10) -> np.ndarray:
    """(k, k) int counts: rows are true digits, columns predicted digits."""
    return np.bincount(y_true.astype(np.int64) * k + y_pred, minlength=k * k).reshape(k, k)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    return np.diag(cm) / np.maximum(cm.sum(1), 1)
