"""The two Keras networks run in NumPy: read from their ``.keras`` files, forward pass, each layer's
output, and the gradient of a logit with respect to the pixels.

Keras trains them (in ``core.train`` and the live-training worker); everything that only *reads* them
(the web server, evaluation, the Draw page) runs them here, so a process that serves the models never
loads TensorFlow: some 500 MB less per server (README, "A class drawing at once"). A ``.keras`` file is a
zip of ``config.json`` (the layers and their settings) and ``model.weights.h5`` (the arrays, read with
h5py): neither can run code. Only the layers the two networks use are understood, with the settings they
use; anything else is refused with a message rather than computed wrongly. ``tests/test_keras_numpy.py``
checks every output and gradient against Keras itself.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from core.artifacts import ArtifactError

CHUNK = 256  # images per step of a batch: keeps the convolutions' unfolded patches to a few tens of MB


class Unsupported(ValueError):
    """A layer or setting this reader does not compute."""


class Layer:
    """One layer: ``forward(x)`` for a batch; ``backward(g, x, y)`` turns d(out)/d(y) into d(out)/d(x)."""

    weights: tuple = ()

    def __init__(self, name: str, config: dict, weights: list[np.ndarray], in_shape: tuple):
        self.name, self.in_shape = name, in_shape
        self.out_shape = self.setup(config, weights, in_shape)

    def setup(self, config, weights, in_shape) -> tuple:
        if weights:
            raise Unsupported(f"layer {self.name!r} should have no weights")
        return in_shape

    def forward(self, x):
        return x

    def backward(self, g, x, y):
        return g

    def _take(self, weights, shapes):
        if [w.shape for w in weights] != [tuple(s) for s in shapes]:
            raise Unsupported(f"layer {self.name!r} has weights of shapes {[w.shape for w in weights]}, "
                              f"expected {[tuple(s) for s in shapes]}")
        return [np.asarray(w, np.float32) for w in weights]


def _activation(name: str, layer: str) -> str:
    if name not in ("linear", "relu", "softmax"):
        raise Unsupported(f"layer {layer!r}: activation {name!r}")
    return name


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


class Reshape(Layer):
    def setup(self, config, weights, in_shape):
        super().setup(config, weights, in_shape)
        out = tuple(config["target_shape"])
        if int(np.prod(out)) != int(np.prod(in_shape)):
            raise Unsupported(f"layer {self.name!r} cannot reshape {in_shape} to {out}")
        return out

    def forward(self, x):
        return x.reshape((len(x), *self.out_shape))

    def backward(self, g, x, y):
        return g.reshape(x.shape)


class Flatten(Reshape):
    def setup(self, config, weights, in_shape):
        return Layer.setup(self, config, weights, (int(np.prod(in_shape)),))


class Dropout(Layer):
    """Nothing at inference."""


class ReLU(Layer):
    def setup(self, config, weights, in_shape):
        if config.get("max_value") is not None or config.get("negative_slope", 0) or config.get("threshold", 0):
            raise Unsupported(f"layer {self.name!r}: only the plain ReLU")
        return super().setup(config, weights, in_shape)

    def forward(self, x):
        return np.maximum(x, 0)

    def backward(self, g, x, y):
        return g * (x > 0)


class Dense(Layer):
    def setup(self, config, weights, in_shape):
        if len(in_shape) != 1:
            raise Unsupported(f"layer {self.name!r}: Dense on a {len(in_shape)}-d input")
        units, bias = int(config["units"]), bool(config.get("use_bias", True))
        shapes = [(in_shape[0], units)] + ([(units,)] if bias else [])
        self.weights = tuple(self._take(weights, shapes))
        self.kernel = self.weights[0]
        self.bias = self.weights[1] if bias else np.zeros(units, np.float32)
        self.activation = _activation(config.get("activation", "linear"), self.name)
        return (units,)

    def scores(self, x):
        return x @ self.kernel + self.bias

    def forward(self, x):
        z = self.scores(x)
        return np.maximum(z, 0) if self.activation == "relu" else softmax(z) if self.activation == "softmax" else z

    def backward(self, g, x, y):
        if self.activation == "softmax":
            raise Unsupported("the gradient is taken of the scores before the softmax")
        return (g * (y > 0) if self.activation == "relu" else g) @ self.kernel.T


class BatchNormalization(Layer):
    """At inference an affine map per channel: (x - moving mean) / sqrt(moving variance + eps) * gamma + beta."""

    def setup(self, config, weights, in_shape):
        if config.get("axis", -1) not in (-1, len(in_shape)):
            raise Unsupported(f"layer {self.name!r}: batch norm over axis {config.get('axis')}")
        c = in_shape[-1]
        scale, center = bool(config.get("scale", True)), bool(config.get("center", True))
        w = self._take(weights, [(c,)] * (2 + scale + center))  # Keras's order: gamma, beta, mean, variance
        self.weights = tuple(w)
        gamma = w.pop(0) if scale else np.ones(c, np.float32)
        beta = w.pop(0) if center else np.zeros(c, np.float32)
        mean, var = w
        self.scale = (gamma / np.sqrt(var + np.float32(config.get("epsilon", 1e-3)))).astype(np.float32)
        self.shift = (beta - mean * self.scale).astype(np.float32)
        return in_shape

    def forward(self, x):
        y = x * self.scale
        y += self.shift
        return y

    def backward(self, g, x, y):
        return g * self.scale


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


class Conv2D(Layer):
    """Stride 1, channels last, 'same' or 'valid': each output pixel is one patch times the kernel, so a batch
    is one matrix product of its unfolded patches (im2col)."""

    def setup(self, config, weights, in_shape):
        if len(in_shape) != 3 or config.get("data_format", "channels_last") != "channels_last":
            raise Unsupported(f"layer {self.name!r}: only channels-last images")
        if (_pair(config.get("strides", 1)) != (1, 1) or _pair(config.get("dilation_rate", 1)) != (1, 1)
                or config.get("groups", 1) != 1 or config.get("padding") not in ("same", "valid")):
            raise Unsupported(f"layer {self.name!r}: only stride 1, no dilation or groups, 'same' or 'valid'")
        kh, kw = _pair(config["kernel_size"])
        h, w, c = in_shape
        f, bias = int(config["filters"]), bool(config.get("use_bias", True))
        self.weights = tuple(self._take(weights, [(kh, kw, c, f)] + ([(f,)] if bias else [])))
        self.kernel = self.weights[0]
        self.bias = self.weights[1] if bias else None
        self.activation = _activation(config.get("activation", "linear"), self.name)
        if self.activation == "softmax":
            raise Unsupported(f"layer {self.name!r}: softmax convolution")
        self.matrix = self.kernel.reshape(kh * kw * c, f)  # rows in the patches' order: kernel row, column, channel
        if config["padding"] == "same":  # as TensorFlow pads: the odd pixel, if any, at the bottom and right
            self.pad = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2), ((kw - 1) // 2, kw - 1 - (kw - 1) // 2)
        else:
            self.pad = ((0, 0), (0, 0))
        self.k = (kh, kw)
        return (h + sum(self.pad[0]) - kh + 1, w + sum(self.pad[1]) - kw + 1, f)

    def _padded(self, x):
        return np.pad(x, ((0, 0), *self.pad, (0, 0))) if any(map(any, self.pad)) else x

    def forward(self, x):
        n, (ho, wo, f), (kh, kw) = len(x), self.out_shape, self.k
        x = np.ascontiguousarray(self._padded(x).transpose(3, 0, 1, 2))  # channels first: the copies below take whole rows
        patches = np.empty((kh, kw, x.shape[0], n, ho, wo), np.float32)
        for i in range(kh):
            for j in range(kw):
                patches[i, j] = x[:, :, i:i + ho, j:j + wo]
        z = (patches.reshape(kh * kw * x.shape[0], -1).T @ self.matrix).reshape(n, ho, wo, f)
        if self.bias is not None:
            z += self.bias
        return np.maximum(z, 0) if self.activation == "relu" else z

    def backward(self, g, x, y):
        if self.activation == "relu":
            g = g * (y > 0)
        n, (ho, wo, f), (kh, kw) = len(x), self.out_shape, self.k
        # each output pixel's gradient, spread back over the patch it read, added up where patches overlap
        per_patch = (g.reshape(-1, f) @ self.matrix.T).reshape(n, ho, wo, kh, kw, x.shape[-1])
        gx = np.zeros((n, ho + kh - 1, wo + kw - 1, x.shape[-1]), np.float32)
        for i in range(kh):
            for j in range(kw):
                gx[:, i:i + ho, j:j + wo] += per_patch[:, :, :, i, j]
        (top, bottom), (left, right) = self.pad
        return gx[:, top:gx.shape[1] - bottom, left:gx.shape[2] - right]


class MaxPooling2D(Layer):
    """Non-overlapping 2-d max pooling ('valid': a leftover row or column is dropped)."""

    def setup(self, config, weights, in_shape):
        p = _pair(config.get("pool_size", 2))
        if (_pair(config.get("strides") or p) != p or config.get("padding", "valid") != "valid"
                or config.get("data_format", "channels_last") != "channels_last" or len(in_shape) != 3):
            raise Unsupported(f"layer {self.name!r}: only non-overlapping, 'valid', channels-last pooling")
        super().setup(config, weights, in_shape)
        self.p = p
        h, w, c = in_shape
        return (h // p[0], w // p[1], c)

    def _windows(self, x):
        (ph, pw), (ho, wo, c) = self.p, self.out_shape
        x = x[:, : ho * ph, : wo * pw]
        return x.reshape(len(x), ho, ph, wo, pw, c).transpose(0, 1, 3, 5, 2, 4).reshape(len(x), ho, wo, c, ph * pw)

    def forward(self, x):
        (ph, pw), (ho, wo, _) = self.p, self.out_shape
        return np.maximum.reduce([x[:, i: ho * ph: ph, j: wo * pw: pw] for i in range(ph) for j in range(pw)])

    def backward(self, g, x, y):
        # the gradient goes to the first largest value of each window, as TensorFlow's does
        win = self._windows(x)
        gw = np.zeros_like(win)
        np.put_along_axis(gw, win.argmax(-1)[..., None], g[..., None], -1)
        (ph, pw), (ho, wo, c) = self.p, self.out_shape
        gx = np.zeros_like(x)
        gx[:, : ho * ph, : wo * pw] = gw.reshape(len(x), ho, wo, c, ph, pw).transpose(0, 1, 4, 2, 5, 3).reshape(
            len(x), ho * ph, wo * pw, c)
        return gx


H5_NAMES = {"Reshape": "reshape", "Flatten": "flatten", "Dropout": "dropout", "ReLU": "re_lu", "Dense": "dense",
            "BatchNormalization": "batch_normalization", "Conv2D": "conv2d", "MaxPooling2D": "max_pooling2d"}
LAYERS = {cls.__name__: cls for cls in (Reshape, Flatten, Dropout, ReLU, Dense, BatchNormalization, Conv2D,
                                        MaxPooling2D)}


class Network:
    """A Keras ``Sequential`` network as a list of NumPy layers: input (n, 28, 28) -> probabilities (n, 10)."""

    def __init__(self, name: str, in_shape: tuple, specs: list[tuple[str, dict, list]]):
        """``specs``: (Keras class name, layer config, weight arrays in Keras's order) for each layer."""
        self.name, self.in_shape, self.layers = name, tuple(in_shape), []
        shape = self.in_shape
        for kind, config, weights in specs:
            if kind not in LAYERS:
                raise Unsupported(f"layer {config.get('name')!r} is a {kind}, which this reader does not compute")
            layer = LAYERS[kind](config.get("name", kind), config, weights, shape)
            self.layers.append(layer)
            shape = layer.out_shape
        last = self.layers[-1] if self.layers else None
        if not isinstance(last, Dense) or last.activation != "softmax" or shape != (10,):
            raise Unsupported("the network must end in a softmax Dense layer of 10 units")
        self.out_shape = shape

    @classmethod
    def from_keras(cls, net) -> Network:
        """The NumPy twin of a Keras model in memory (its current weights)."""
        specs = [(type(layer).__name__, layer.get_config(), [np.asarray(w) for w in layer.weights])
                 for layer in net.layers]
        return cls(net.name, tuple(net.input_shape[1:]), specs)

    # --- reading ---------------------------------------------------------------------------
    def _run(self, x, upto: int):
        outs = [x]
        for layer in self.layers[:upto]:
            outs.append(layer.forward(outs[-1]))
        return outs

    def _chunks(self, x, f):
        x = np.asarray(x, np.float32)
        if len(x) <= CHUNK:
            return f(x)
        return np.concatenate([f(x[i: i + CHUNK]) for i in range(0, len(x), CHUNK)])

    def predict_proba(self, x):
        return self._chunks(x, lambda b: self._run(b, len(self.layers))[-1])

    def logits(self, x):
        return self._chunks(x, lambda b: self.layers[-1].scores(self._run(b, len(self.layers) - 1)[-1]))

    def outputs(self, x):
        """Every layer's output for a batch, first to last: [(layer, array)]."""
        outs = self._run(np.asarray(x, np.float32), len(self.layers))
        return list(zip(self.layers, outs[1:], strict=True))

    def logit_gradient(self, x, target):
        """d(score of class ``target[i]``)/d(x[i]) for each image, by backpropagation: (n, 28, 28)."""
        x = np.asarray(x, np.float32)
        outs = self._run(x, len(self.layers) - 1)
        g = self.layers[-1].kernel.T[np.asarray(target)]  # the score's gradient with respect to its input
        for layer, inp, out in reversed(list(zip(self.layers[:-1], outs[:-1], outs[1:], strict=True))):
            g = layer.backward(g, inp, out)
        return g.astype(np.float32, copy=False)

    def num_params(self) -> int:
        return sum(w.size for layer in self.layers for w in layer.weights)

    def multiply_adds(self) -> int:
        """One per weight of each Dense layer; a convolution's kernel is applied at every output position."""
        total = 0
        for layer in self.layers:
            if isinstance(layer, Dense):
                total += layer.kernel.size
            elif isinstance(layer, Conv2D):
                total += layer.out_shape[0] * layer.out_shape[1] * layer.kernel.size
        return int(total)


def read(path) -> Network:
    """A ``.keras`` file as a ``Network``; ArtifactError, saying what is wrong, for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path} is missing.")
    try:
        import h5py  # only here: what reads the weights

        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
            weights_file = io.BytesIO(z.read("model.weights.h5"))
        if config.get("class_name") != "Sequential":
            raise Unsupported(f"a {config.get('class_name')!r} model, not a Sequential network")
        layers = config["config"]["layers"]
        if not layers or layers[0].get("class_name") != "InputLayer":
            raise Unsupported("no input layer")
        in_shape = tuple(layers[0]["config"]["batch_shape"][1:])
        specs = []
        seen: dict[str, int] = {}
        with h5py.File(weights_file, "r") as weights:
            for layer in layers[1:]:
                # Keras files a layer's arrays under its kind and the number of that kind before it
                # (dense, dense_1, ...), not under the layer's own name
                stem = H5_NAMES.get(layer["class_name"], layer["class_name"])
                seen[stem] = seen.get(stem, -1) + 1
                group = weights.get(f"layers/{stem}{f'_{seen[stem]}' if seen[stem] else ''}/vars")
                arrays = [] if group is None else [np.asarray(group[k]) for k in sorted(group, key=int)]
                specs.append((layer["class_name"], layer["config"], arrays))
        return Network(config["config"]["name"], in_shape, specs)
    except Unsupported as e:
        raise ArtifactError(f"{path} holds a network this app cannot run: {e}.") from e
    except Exception as e:  # a damaged zip, JSON or HDF5 file raises many kinds
        raise ArtifactError(f"{path} is corrupt or unreadable ({type(e).__name__}: {e}).") from e
