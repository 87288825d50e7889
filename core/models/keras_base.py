"""The shared half of the two Keras models: training one epoch, the forward pass, the model hooks
(logits, gradients, activations) and saving.

A Keras model file only says what its network is (``build``); this class runs it.
Files are native ``.keras`` archives, loaded with ``safe_mode=True`` so that a
file can never run code, and checked to hold the network their folder names.
"""

from __future__ import annotations

import threading
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from core.artifacts import ArtifactError
from core.models.base import Classifier, as_batch

WEIGHTS_FILE = "model.keras"
BATCH = 1024  # images per call of the compiled forward pass
STEPS_PER_EXECUTION = 20  # training steps per call into the graph: a small net's step is mostly Python overhead


class _Progress(keras.callbacks.Callback):
    def __init__(self, owner, steps, on_batch):
        super().__init__()
        self.owner, self.steps, self.on_batch = owner, steps, on_batch

    def on_train_batch_end(self, batch, logs=None):
        # called once per STEPS_PER_EXECUTION steps; ``batch`` is the last step done
        if self.on_batch(min(1.0, (batch + 1) / self.steps)) is False:
            self.owner._stopped = True
            self.model.stop_training = True


class KerasClassifier(Classifier):
    def __init__(self, settings=None):
        super().__init__(settings)
        keras.utils.set_random_seed(self.settings.train.seed)
        self.net = self.build()
        self._compile()

    def build(self) -> keras.Model:
        """The network, input (n, 28, 28) -> softmax (n, 10), named after the model."""
        raise NotImplementedError

    def _compile(self):
        self.net.compile(
            optimizer=keras.optimizers.Adam(self.settings.train.lr),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=STEPS_PER_EXECUTION,
        )
        self._forward = None
        self._forward_lock = threading.Lock()

    def train_epoch(self, x, y, lr, rng, on_batch=None):
        self.net.optimizer.learning_rate.assign(lr)
        bs = self.settings.train.batch_size
        callbacks = [_Progress(self, -(-len(x) // bs), on_batch)] if on_batch else []
        h = self.net.fit(x, y, batch_size=bs, epochs=1, shuffle=True, verbose=0, callbacks=callbacks)
        return h.history["loss"][-1], h.history["accuracy"][-1]

    # --- the one forward pass --------------------------------------------------------------
    def _compiled(self):
        """The network in inference mode as one traced graph, built once per network.

        Keras's ``predict`` sets up a data pipeline on every call (~30 ms for one image) and
        ``predict_on_batch`` is a second path; this one serves one image and 10,000 alike.
        """
        with self._forward_lock:
            if self._forward is None:
                net = self.net
                self._forward = tf.function(lambda t: net(t, training=False), autograph=False,
                                            reduce_retracing=True,
                                            input_signature=[tf.TensorSpec((None, 28, 28), tf.float32)])
            return self._forward

    def predict_proba(self, x):
        x = np.asarray(x, np.float32)
        if len(x) == 0:  # Keras's conv layers reject an empty batch
            return np.zeros((0, 10), np.float32)
        forward = self._compiled()
        return np.concatenate([forward(x[i : i + BATCH]).numpy() for i in range(0, len(x), BATCH)])

    # --- hooks for looking inside ------------------------------------------------------------
    def _hidden(self, x):
        """Everything before the final Dense layer, in inference mode."""
        h = x
        for layer in self.net.layers[:-1]:
            h = layer(h, training=False)
        return h

    def _scores(self, h):
        last = self.net.layers[-1]
        return tf.matmul(h, last.kernel) + last.bias  # the final Dense without its softmax

    def logits(self, x):
        x = np.asarray(x, np.float32)
        return np.asarray(self._scores(self._hidden(tf.convert_to_tensor(x))), np.float32)

    def logit_gradient(self, x, target):
        x = as_batch(x)
        target = np.broadcast_to(np.asarray(target, np.intp), (len(x),))
        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            picked = tf.gather(self._scores(self._hidden(xt)), target, axis=1, batch_dims=1)
        return np.asarray(tape.gradient(picked, xt), np.float32)

    def _shown_layers(self):
        """(layer, title) for the layers worth showing: hidden Dense outputs, conv blocks, pools."""
        shown, dense, conv, pool = [], 0, 0, 0
        last = self.net.layers[-1]
        for layer in self.net.layers:
            if isinstance(layer, layers.Dense) and layer is not last:
                dense += 1
                shown.append((layer, f"hidden layer {dense}: {layer.units} ReLU units"))
            elif isinstance(layer, layers.ReLU):
                conv += 1
                shown.append((layer, f"convolution {conv} (after batch norm and ReLU)"))
            elif isinstance(layer, layers.MaxPooling2D):
                pool += 1
                shown.append((layer, f"max pooling {pool}"))
        return shown

    def activations(self, x28):
        shown = self._shown_layers()
        wanted = {id(layer): title for layer, title in shown}
        out, kept = np.asarray(x28, np.float32).reshape(1, 28, 28), []
        for layer in self.net.layers:
            out = layer(out, training=False)
            if id(layer) in wanted:
                kept.append((wanted[id(layer)], np.asarray(out)[0].astype(np.float32)))
        return kept

    def num_params(self):
        return int(self.net.count_params())

    def multiply_adds(self):
        """One per weight of each Dense layer; a convolution's kernel is applied at every output position."""
        total = 0
        for layer in self.net.layers:
            if isinstance(layer, layers.Dense):
                total += int(np.prod(layer.kernel.shape))
            elif isinstance(layer, layers.Conv2D):
                _, h, w, _ = layer.output.shape
                total += int(h * w * np.prod(layer.kernel.shape))
        return total

    def _save_weights(self, folder: Path):
        self.net.save(folder / WEIGHTS_FILE)

    def _load_weights(self, folder: Path):
        path = folder / WEIGHTS_FILE
        if not path.is_file():
            raise ArtifactError(f"{path} is missing.")
        try:
            net = keras.models.load_model(path, safe_mode=True, compile=False)
        except Exception as e:  # Keras raises many kinds for a damaged archive
            raise ArtifactError(f"{path} is corrupt or unreadable ({type(e).__name__}: {e}).") from e
        if net.name != self.name:  # e.g. two models' files swapped between folders
            raise ArtifactError(f"{path} holds the {net.name!r} network, not {self.name!r}: the model files "
                                f"were moved or swapped. Retrain with: python -m core.train --models {self.name}")
        if net.output_shape != (None, 10):
            raise ArtifactError(f"{path}: output shape {net.output_shape}, expected (None, 10).")
        self.net = net
        self._compile()
        # Trace the forward pass now, in one thread, before threads share the model.
        self.predict_proba(np.zeros((1, 28, 28), np.float32))
