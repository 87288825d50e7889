"""The shared half of the two Keras models: training one epoch, predicting, saving.

A Keras model file only says what its network is (``build``); this class runs it.
Files are native ``.keras`` archives, loaded with ``safe_mode=True`` so that a
file can never run code.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from core.models.base import ArtifactError, Classifier

WEIGHTS_FILE = "model.keras"


class _Progress(keras.callbacks.Callback):
    def __init__(self, owner, steps, on_batch):
        super().__init__()
        self.owner, self.steps, self.on_batch = owner, steps, on_batch

    def on_train_batch_end(self, batch, logs=None):
        if batch % 10 == 9 and self.on_batch((batch + 1) / self.steps) is False:
            self.owner._stopped = True
            self.model.stop_training = True


class KerasClassifier(Classifier):
    def __init__(self, settings=None):
        super().__init__(settings)
        keras.utils.set_random_seed(self.settings.seed)
        self.net = self.build()
        self._compile()

    def build(self) -> keras.Model:
        """The network, input (n, 28, 28) -> softmax (n, 10)."""
        raise NotImplementedError

    def _compile(self):
        self.net.compile(
            optimizer=keras.optimizers.Adam(self.settings.lr),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

    def _train_epoch(self, x, y, lr, rng, on_batch=None):
        self.net.optimizer.learning_rate.assign(lr)
        bs = self.settings.batch_size
        callbacks = [_Progress(self, -(-len(x) // bs), on_batch)] if on_batch else []
        h = self.net.fit(x, y, batch_size=bs, epochs=1, shuffle=True, verbose=0, callbacks=callbacks)
        return h.history["loss"][-1], h.history["accuracy"][-1]

    def predict_proba(self, x):
        x = np.asarray(x, np.float32)
        if len(x) == 0:  # Keras's conv layers reject an empty batch
            return np.zeros((0, 10), np.float32)
        if len(x) <= 64:  # skips predict()'s per-call set-up: ~0.5 ms for one image instead of ~30
            return np.asarray(self.net.predict_on_batch(x))
        return self.net.predict(x, batch_size=1024, verbose=0)

    def num_params(self):
        return int(self.net.count_params())

    def _save_weights(self, folder: Path):
        self.net.save(folder / WEIGHTS_FILE)

    def _load_weights(self, folder: Path):
        path = folder / WEIGHTS_FILE
        if not path.is_file():
            raise ArtifactError(f"{path} is missing.")
        try:
            self.net = keras.models.load_model(path, safe_mode=True, compile=False)
        except Exception as e:  # Keras raises many kinds for a damaged archive
            raise ArtifactError(f"{path} is corrupt or unreadable ({type(e).__name__}: {e}).") from e
        if self.net.output_shape != (None, 10):
            raise ArtifactError(f"{path}: output shape {self.net.output_shape}, expected (None, 10).")
        self._compile()
        # Build the compiled predict function now, in one thread, before threads share the model.
        self.net.predict_on_batch(np.zeros((1, 28, 28), np.float32))
