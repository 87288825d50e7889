"""What every model shares: settings on disk, the epoch loop, the learning-rate schedule.

A model subclass supplies four things: ``_train_epoch`` (one pass over the data),
``predict_proba``, ``_save_weights``/``_load_weights`` and ``num_params``.
Everything else (history, validation, schedule, augmentation, settings files with
their format version) lives here once. This module never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from core.augment import Augment, augment
from core.data import Split
from core.metrics import accuracy, cross_entropy

SETTINGS_FILE = "settings.json"
HISTORY_FILE = "history.json"


class ArtifactError(Exception):
    """A saved model or artifact file is missing, corrupt or of another format version."""


def cosine_lr(base: float, epoch: int, epochs: int) -> float:
    """Half a cosine from ``base`` down towards 0 over the run: big steps early, fine ones late."""
    return base * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing.") from None
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path} is corrupt ({e}).") from e


class Classifier:
    """One digit classifier: images float32 (n, 28, 28) in [0, 1] -> probabilities (n, 10)."""

    name: ClassVar[str]
    Settings: ClassVar[type]  # the model's settings dataclass
    FORMAT_VERSION: ClassVar[int]  # bump when saved files change shape; load refuses others

    def __init__(self, settings=None):
        self.settings = settings if settings is not None else self.Settings()
        self.augmentation = Augment()  # how fit distorts the training images when settings.augment is on
        self.history: list[dict] = []
        self._stopped = False  # set by _train_epoch when on_batch asks to stop

    # --- what each model implements ------------------------------------------------------
    def _train_epoch(self, x: np.ndarray, y: np.ndarray, lr: float, rng, on_batch=None) -> tuple[float, float]:
        """One pass over (x, y) at learning rate ``lr``; returns mean (loss, accuracy) of the pass."""
        raise NotImplementedError

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def num_params(self) -> int:
        raise NotImplementedError

    def _save_weights(self, folder: Path) -> None:
        raise NotImplementedError

    def _load_weights(self, folder: Path) -> None:
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(1)

    def fit(
        self,
        train: Split,
        val: Split,
        epochs: int | None = None,
        on_epoch: Callable[[dict], object] | None = None,
        on_batch: Callable[[float], object] | None = None,
    ) -> list[dict]:
        """Train for ``epochs`` (default: the settings') and return the per-epoch history.

        ``on_epoch(record)`` is called after every epoch and ``on_batch(fraction_done)``
        during it; either returning False stops training, keeping what was learnt so far.
        """
        s = self.settings
        epochs = epochs or s.epochs
        rng = np.random.default_rng(s.seed + 1 + len(self.history))
        self._stopped = False
        for epoch in range(epochs):
            lr = cosine_lr(s.lr, epoch, epochs)
            start = time.perf_counter()
            x = augment(train.x, rng, self.augmentation) if s.augment else train.x
            loss, acc = self._train_epoch(x, train.y, lr, rng, on_batch)
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
        meta = {
            "model": self.name,
            "format_version": self.FORMAT_VERSION,
            "settings": dataclasses.asdict(self.settings),
        }
        (folder / SETTINGS_FILE).write_text(json.dumps(meta, indent=2))
        (folder / HISTORY_FILE).write_text(json.dumps(self.history, indent=1))
        self._save_weights(folder)

    @classmethod
    def load(cls, folder):
        folder = Path(folder)
        meta = read_json(folder / SETTINGS_FILE)
        if meta.get("model") != cls.name:
            raise ArtifactError(f"{folder / SETTINGS_FILE} is for model {meta.get('model')!r}, not {cls.name!r}.")
        if meta.get("format_version") != cls.FORMAT_VERSION:
            raise ArtifactError(
                f"{folder / SETTINGS_FILE}: format version {meta.get('format_version')}, this code reads "
                f"version {cls.FORMAT_VERSION}. Retrain with: python -m core.train --models {cls.name}"
            )
        try:
            # JSON has no tuples; settings use tuples (hashable, immutable) for layer sizes
            settings = cls.Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["settings"].items()})
        except (KeyError, TypeError) as e:
            raise ArtifactError(f"{folder / SETTINGS_FILE}: settings do not match {cls.Settings.__name__} ({e}).") from e
        model = cls(settings)
        model._load_weights(folder)
        history_path = folder / HISTORY_FILE
        model.history = read_json(history_path) if history_path.exists() else []
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings})"
