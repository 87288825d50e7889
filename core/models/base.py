"""The interface every model shares, and what they share in code: the epoch loop, the learning-rate
schedule, saving and loading with the settings beside the weights.

A model supplies its ``Settings`` dataclass (architecture fields plus ``train: TrainSettings``) and:

    train_epoch(x, y, lr, rng, on_batch)   one pass over the data; the loop ``fit`` runs
    predict_proba(x)                       (n, 28, 28) -> (n, 10), fast for one image and for many
    logits(x)                              the scores before softmax, (n, 10)
    logit_gradient(x, target)              d logit[target] / d pixels, (n, 28, 28): saliency
    activations(x28)                       [(title, array)] what each hidden layer computes for one digit
    num_params(), multiply_adds(), _save_weights(folder), _load_weights(folder)

``temperature`` (None until ``calibrate`` fits it on held-out digits) is saved beside the
settings; ``calibrated_proba`` applies it. ``tta_proba`` reads each digit and its ``TTA_WARPS``
views and averages, tempered by ``tta_temperature``, fitted the same way to that reading. MLPs add ``first_layer_weights()``, the CNN ``conv_filters(layer)``; ``kind`` says which.
This module never imports TensorFlow.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

from core.artifacts import ArtifactError, read_json
from core.augment import augment
from core.data import Split
from core.metrics import accuracy, cross_entropy
from core.pixels import views
from core.settings import from_dict, to_dict
from core.stats import ece, fit_temperature, nll, temper
from core.styles import styled_pool

SETTINGS_FILE = "settings.json"
HISTORY_FILE = "history.json"


def cosine_lr(base: float, epoch: int, epochs: int) -> float:
    """Half a cosine from ``base`` down towards 0 over the run: big steps early, fine ones late."""
    return base * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))


def as_batch(x) -> np.ndarray:
    """float32 (n, 28, 28) from one digit (28, 28) or a batch."""
    x = np.asarray(x, np.float32)
    return x[None] if x.ndim == 2 else x


class Classifier:
    """One digit classifier: images float32 (n, 28, 28) in [0, 1] -> probabilities (n, 10)."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "mlp" (fully connected) or "cnn" (convolutional): which weights there are to show
    Settings: ClassVar[type]  # the model's settings dataclass
    FORMAT_VERSION: ClassVar[int]  # bump when saved files change shape; load refuses others

    def __init__(self, settings=None):
        self.settings = settings if settings is not None else self.Settings()
        self.history: list[dict] = []
        self.temperature: float | None = None  # temperature scaling, fitted on validation digits (calibrate)
        self.tta_temperature: float | None = None  # the same, for the averaged test-time readings (tta_proba)
        self._stopped = False  # set by train_epoch when on_batch asks to stop

    # --- what each model implements ------------------------------------------------------
    def train_epoch(self, x: np.ndarray, y: np.ndarray, lr: float, rng, on_batch=None) -> tuple[float, float]:
        """One pass over (x, y) at learning rate ``lr``; returns mean (loss, accuracy) of the pass.

        ``on_batch(fraction_done)`` may return False to stop mid-epoch (then ``_stopped`` is set).
        """
        raise NotImplementedError

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def logits(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def logit_gradient(self, x: np.ndarray, target) -> np.ndarray:
        """d(logit of class ``target``)/d(pixels): x (n, 28, 28) or one (28, 28), target int or (n,) -> (n, 28, 28).

        The logit rather than the probability, because a confident model's probability is flat
        near 1 and its gradient vanishes.
        """
        raise NotImplementedError

    def activations(self, x28: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """What each hidden layer computes for one digit (28, 28), input to output: (title, array)."""
        raise NotImplementedError

    def first_layer_weights(self) -> np.ndarray:
        """(units, 28, 28): each first-layer unit's weights laid out as an image (MLPs)."""
        raise TypeError(f"{self.name} is not a multilayer perceptron; see conv_filters")

    def conv_filters(self, layer: int = 0) -> np.ndarray:
        """Convolution filters as the network applies them (CNNs)."""
        raise TypeError(f"{self.name} has no convolutions")

    def num_params(self) -> int:
        raise NotImplementedError

    def multiply_adds(self) -> int:
        """Multiply-accumulate operations to read one image: the cost of the forward pass."""
        raise NotImplementedError

    def _save_weights(self, folder: Path) -> None:
        raise NotImplementedError

    def _load_weights(self, folder: Path) -> None:
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(1)

    def calibrated_proba(self, x: np.ndarray) -> np.ndarray:
        """``predict_proba`` with the fitted temperature applied (unchanged if none was fitted).

        Temperature scaling divides the log-probabilities by T before the softmax: the
        ranking of the ten digits never changes, only how sure the model says it is.
        """
        probs = self.predict_proba(x)
        return probs if self.temperature is None else temper(probs, self.temperature)

    def tta_proba(self, x: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Test-time augmentation: the mean of the probabilities for each digit and its ``TTA_WARPS``
        views, read in one batch, (n, 28, 28) -> (n, 10).

        Averaging softens the answer, so it has a temperature of its own (``tta_temperature``,
        fitted by ``calibrate``; below 1, it sharpens). Raw averages for a model saved without one.
        """
        return self.read_views(views(as_batch(x)), calibrated)

    def read_views(self, v: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """``tta_proba`` for views already made, (n, k, 28, 28) -> (n, 10): several models share one set."""
        n, k = v.shape[:2]
        probs = self.predict_proba(v.reshape(n * k, 28, 28)).reshape(n, k, 10).mean(1)
        if calibrated and self.tta_temperature is not None:
            return temper(probs, self.tta_temperature)
        return probs.astype(np.float32)

    def calibrate(self, val: Split) -> dict:
        """Fit the temperatures on validation digits (never the test set), for one reading and for
        ``tta_proba``'s; returns the figures before and after."""
        probs = self.predict_proba(val.x)
        self.temperature = fit_temperature(probs, val.y)
        tempered = temper(probs, self.temperature)
        averaged = self.tta_proba(val.x, calibrated=False)
        self.tta_temperature = fit_temperature(averaged, val.y)
        return {
            "temperature": self.temperature,
            "val_size": len(val),
            "val_nll_before": nll(probs, val.y), "val_nll_after": nll(tempered, val.y),
            "val_ece_before": ece(probs, val.y), "val_ece_after": ece(tempered, val.y),
            "tta_temperature": self.tta_temperature,
            "val_ece_tta_before": ece(averaged, val.y),
            "val_ece_tta_after": ece(temper(averaged, self.tta_temperature), val.y),
        }

    def fit(
        self,
        train: Split,
        val: Split,
        on_epoch: Callable[[dict], object] | None = None,
        on_batch: Callable[[float], object] | None = None,
    ) -> list[dict]:
        """Train as ``settings.train`` says and return the per-epoch history.

        ``on_epoch(record)`` is called after every epoch and ``on_batch(fraction_done)``
        during it; either returning False stops training, keeping what was learnt so far.
        """
        t = self.settings.train
        rng = np.random.default_rng(t.seed + 1 + len(self.history))
        self._stopped = False
        styles = t.augment and t.augmentation.styles > 0 and bool(t.augmentation.style_digits)
        if styles:  # one styled copy of each 0, 1 and 7 (or those named), drawn once; each epoch shows a share
            styled_at, styled = styled_pool(train.x, train.y, t.seed, t.augmentation.style_digits)
        for epoch in range(t.epochs):
            lr = cosine_lr(t.lr, epoch, t.epochs)
            start = time.perf_counter()
            x = train.x
            if styles:
                pick = rng.random(len(styled_at)) < t.augmentation.styles
                x = x.copy()
                x[styled_at[pick]] = styled[pick]
            x = augment(x, rng, t.augmentation_at(epoch), labels=train.y) if t.augment else x
            loss, acc = self.train_epoch(x, train.y, lr, rng, on_batch)
            seconds = time.perf_counter() - start
            p = self.predict_proba(val.x)
            record = {
                "epoch": len(self.history) + 1,
                "loss": float(loss),
                "accuracy": float(acc),
                "val_loss": cross_entropy(p, val.y),
                "val_accuracy": accuracy(p, val.y),
                "lr": lr,
                "seconds": seconds,
            }
            self.history.append(record)
            stop = on_epoch is not None and on_epoch(record) is False
            if stop or self._stopped:
                break
        return self.history

    def save(self, folder) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"model": self.name, "format_version": self.FORMAT_VERSION, "settings": to_dict(self.settings),
                "temperature": self.temperature, "tta_temperature": self.tta_temperature}
        (folder / SETTINGS_FILE).write_text(json.dumps(meta, indent=2))
        (folder / HISTORY_FILE).write_text(json.dumps(self.history, indent=1))
        self._save_weights(folder)

    @classmethod
    def read_settings(cls, folder):
        """The settings saved in ``folder``, checked: this model, this format version, valid fields."""
        path = Path(folder) / SETTINGS_FILE
        meta = read_json(path)
        if not isinstance(meta, dict):
            raise ArtifactError(f"{path} is corrupt (not a JSON object).")
        if meta.get("model") != cls.name:
            raise ArtifactError(f"{path} is for model {meta.get('model')!r}, not {cls.name!r}.")
        if meta.get("format_version") != cls.FORMAT_VERSION:
            raise ArtifactError(
                f"{path}: format version {meta.get('format_version')}, this code reads "
                f"version {cls.FORMAT_VERSION}. Retrain with: python -m core.train --models {cls.name}"
            )
        try:
            return from_dict(cls.Settings, meta.get("settings"))
        except (TypeError, ValueError) as e:
            raise ArtifactError(f"{path}: settings do not match {cls.Settings.__name__} ({e}).") from e

    @classmethod
    def read_temperature(cls, folder, key: str = "temperature") -> float | None:
        """A saved temperature (``key``: "temperature" or "tta_temperature"): None for a model saved
        before it existed."""
        path = Path(folder) / SETTINGS_FILE
        t = read_json(path).get(key)
        if t is None:
            return None
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.01 <= t <= 100:
            raise ArtifactError(f"{path}: {key.replace('_', ' ')} {t!r} is not a number between 0.01 and 100.")
        return float(t)

    @classmethod
    def _blank(cls, settings):
        """A model with these settings, about to receive saved weights (``load``)."""
        return cls(settings)

    @classmethod
    def load(cls, folder):
        folder = Path(folder)
        model = cls._blank(cls.read_settings(folder))
        model.temperature = cls.read_temperature(folder)
        model.tta_temperature = cls.read_temperature(folder, "tta_temperature")
        model._load_weights(folder)
        history_path = folder / HISTORY_FILE
        model.history = read_json(history_path) if history_path.exists() else []
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings})"
