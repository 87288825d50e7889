"""The shared half of the two Keras models: Keras builds, trains and saves them; NumPy reads them.

A Keras model file only says what its network is (``build``); this class trains it with Keras and
answers every question about it (probabilities, logits, gradients, activations, weights) through
``core.models.keras_numpy``, the same network run in NumPy from the same weights. So loading a saved model
(``load``) never imports TensorFlow: the web server and every page run without it, and TensorFlow is
loaded only where a network is built or trained (``core.train``, the live-training worker) or where Keras's
own network is asked for (``net``, e.g. by the benchmark's baselines). Files are native ``.keras`` archives;
Keras opens them with ``safe_mode=True`` and NumPy reads only their JSON and HDF5 arrays, so a file can
never run code; both check that it holds the network its folder names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.artifacts import ArtifactError
from core.models import keras_numpy
from core.models.base import Classifier, as_batch

WEIGHTS_FILE = "model.keras"
STEPS_PER_EXECUTION = 20  # training steps per call into the graph: a small net's step is mostly Python overhead


def _progress(owner, steps, on_batch):
    """A Keras callback passing the fraction of the epoch done to ``on_batch``; False from it stops."""
    import keras

    class Progress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            # called once per STEPS_PER_EXECUTION steps; ``batch`` is the last step done
            if on_batch(min(1.0, (batch + 1) / steps)) is False:
                owner._stopped = True
                self.model.stop_training = True

    return Progress()


def sam_step(net, rho: float):
    """A compiled SAM training step for ``net`` (Foret et al. 2021): (x, y) -> (loss, digits right).

    The gradient g at the weights w points to where the loss rises fastest; SAM takes the gradient again at
    w + rho g/|g|, the worst point that near w (to first order), and has the optimiser apply that one at w.
    Weights whose whole neighbourhood fits the data (a flat minimum) are what it seeks: they read digits unlike
    the training digits better. Batch norm's running statistics are updated on both passes.
    """
    import keras
    import tensorflow as tf

    weights = net.trainable_variables

    def loss_and_grads(x, y):
        with tf.GradientTape() as tape:
            p = net(x, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, p))
        return p, loss, tape.gradient(loss, weights)

    @tf.function
    def step(x, y):
        p, loss, grads = loss_and_grads(x, y)
        norm = tf.linalg.global_norm(grads) + 1e-12
        nudges = [rho * g / norm for g in grads]
        for w, e in zip(weights, nudges):
            w.assign_add(e)
        _, _, sharp = loss_and_grads(x, y)
        for w, e in zip(weights, nudges):
            w.assign_sub(e)
        net.optimizer.apply_gradients(zip(sharp, weights))
        return loss, tf.reduce_sum(tf.cast(tf.equal(tf.argmax(p, 1, output_type=tf.int32), y), tf.float32))

    return step


class KerasClassifier(Classifier):
    def __init__(self, settings=None, *, build: bool = True):
        """``build=False`` (what ``load`` uses) leaves the Keras network unbuilt: a loaded model is read in
        NumPy, and only builds its Keras network from the file if ``net`` is asked for."""
        super().__init__(settings)
        self._net = None  # the Keras network, while training or once asked for
        self._file: Path | None = None  # where a loaded model came from
        self._numpy: keras_numpy.Network | None = None  # the network as NumPy reads it (current weights)
        self._sam_step = None  # SAM's compiled training step, built on first use
        if build:
            import keras

            keras.utils.set_random_seed(self.settings.train.seed)
            self._set_net(self.build())

    def build(self):
        """The Keras network, input (n, 28, 28) -> softmax (n, 10), named after the model."""
        raise NotImplementedError

    @classmethod
    def _blank(cls, settings):
        return cls(settings, build=False)

    def _set_net(self, net) -> None:
        import keras

        net.compile(
            optimizer=keras.optimizers.Adam(self.settings.train.lr),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=STEPS_PER_EXECUTION,
        )
        self._net, self._numpy, self._sam_step = net, None, None

    @property
    def net(self):
        """The Keras network itself (imports TensorFlow): built for training, or opened from the model's file."""
        if self._net is None:
            import keras

            net = keras.models.load_model(self._file, safe_mode=True, compile=False)
            self._set_net(net)
        return self._net

    @property
    def network(self) -> keras_numpy.Network:
        """The network as NumPy runs it, from the weights as they are now."""
        if self._numpy is None:
            self._numpy = keras_numpy.Network.from_keras(self._net)
        return self._numpy

    def train_epoch(self, x, y, lr, rng, on_batch=None):
        self._numpy = None  # the weights are about to change
        self.net.optimizer.learning_rate.assign(lr)
        if self.settings.train.sam:
            return self._sam_epoch(x, y, rng, on_batch)
        bs = self.settings.train.batch_size
        callbacks = [_progress(self, -(-len(x) // bs), on_batch)] if on_batch else []
        h = self.net.fit(x, y, batch_size=bs, epochs=1, shuffle=True, verbose=0, callbacks=callbacks)
        return h.history["loss"][-1], h.history["accuracy"][-1]

    def _sam_epoch(self, x, y, rng, on_batch=None):
        """One epoch of sharpness-aware minimisation, in steps of our own: ``fit`` has no place for the
        second gradient each step takes."""
        if self._sam_step is None:
            self._sam_step = sam_step(self.net, self.settings.train.sam)
        x, y = np.asarray(x, np.float32), np.asarray(y, np.int32)
        order = rng.permutation(len(y))
        bs = self.settings.train.batch_size
        steps = -(-len(y) // bs)
        total_loss = correct = seen = 0.0
        for i, start in enumerate(range(0, len(y), bs)):
            idx = order[start : start + bs]
            loss, hits = self._sam_step(x[idx], y[idx])
            total_loss += float(loss) * len(idx)
            correct += float(hits)
            seen += len(idx)
            if on_batch is not None and i % STEPS_PER_EXECUTION == STEPS_PER_EXECUTION - 1 \
                    and on_batch(min(1.0, (i + 1) / steps)) is False:
                self._stopped = True
                break
        return total_loss / seen, correct / seen

    # --- reading: all in NumPy ----------------------------------------------------------------
    def predict_proba(self, x):
        return self.network.predict_proba(as_batch(x))

    def logits(self, x):
        return self.network.logits(as_batch(x))

    def logit_gradient(self, x, target):
        x = as_batch(x)
        return self.network.logit_gradient(x, np.broadcast_to(np.asarray(target, np.intp), (len(x),)))

    def _titles(self):
        """(layer, title) for the layers worth showing: hidden Dense outputs, conv blocks, pools."""
        shown, dense, conv, pool = [], 0, 0, 0
        last = self.network.layers[-1]
        for layer in self.network.layers:
            if isinstance(layer, keras_numpy.Dense) and layer is not last:
                dense += 1
                shown.append((layer, f"hidden layer {dense}: {layer.kernel.shape[1]} ReLU units"))
            elif isinstance(layer, keras_numpy.ReLU):
                conv += 1
                shown.append((layer, f"convolution {conv} (after batch norm and ReLU)"))
            elif isinstance(layer, keras_numpy.MaxPooling2D):
                pool += 1
                shown.append((layer, f"max pooling {pool}"))
        return shown

    def activations(self, x28):
        titles = {id(layer): title for layer, title in self._titles()}
        outputs = self.network.outputs(np.asarray(x28, np.float32).reshape(1, 28, 28))
        return [(titles[id(layer)], out[0].astype(np.float32)) for layer, out in outputs if id(layer) in titles]

    def num_params(self):
        return self.network.num_params()

    def multiply_adds(self):
        return self.network.multiply_adds()

    # --- files ----------------------------------------------------------------------------------
    def _save_weights(self, folder: Path):
        self.net.save(folder / WEIGHTS_FILE)

    def _load_weights(self, folder: Path):
        path = folder / WEIGHTS_FILE
        network = keras_numpy.read(path)
        if network.name != self.name:  # e.g. two models' files swapped between folders
            raise ArtifactError(f"{path} holds the {network.name!r} network, not {self.name!r}: the model files "
                                f"were moved or swapped. Retrain with: python -m core.train --models {self.name}")
        self._file, self._net, self._numpy = path, None, network
