"""Look inside the three models: activations, saliency, learnt weights, robustness.

    from core import inside
    inside.activations(model, x28)        # [(layer title, array)] for one digit
    inside.saliency(model, x28)           # (28, 28) >= 0: which pixels moved the answer
    inside.first_layer_weights(mlp)       # (k, 28, 28): what each first-layer unit looks for
    inside.conv_filters(lenet)            # (16, 5, 5); layer=1 gives (32, 16, 5, 5)
    inside.distort(x28, rotate=20)        # one test digit, rotated / shifted / scaled / thickened / noisy
    inside.robustness_curve(models, x, y, "rotate", [0, 15, 30])   # {name: [accuracy per strength]}

and small renderers (``mosaic``, ``colorize``, ``overlay``, ``upscale``) that turn those
arrays into crisp RGB images. Every function works on the three model classes in
``core.models`` whatever their settings, so a model trained in the browser is
inspected like the committed ones. NumPy only; TensorFlow is imported inside the
functions that take a Keras model. Images are float32 (28, 28) in [0, 1], ink high.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from core.augment import morph, warp

KINDS = ("rotate", "shift", "scale", "thicken", "noise")
# For the robustness chart: what each distortion's strength means and a sensible range.
# ``identity`` is the strength that leaves a digit unchanged.
DISTORTIONS = {
    "rotate": {"title": "Rotation", "unit": "degrees", "strengths": [0, 10, 20, 30, 45, 60, 90], "identity": 0},
    "shift": {"title": "Shift to the right", "unit": "pixels", "strengths": [0, 1, 2, 3, 4, 5, 6, 8], "identity": 0},
    "scale": {"title": "Size", "unit": "times the original", "strengths": [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5], "identity": 1.0},
    "thicken": {"title": "Stroke width", "unit": "pixels thicker (negative: thinner)", "strengths": [-2, -1, -0.5, 0, 0.5, 1, 2, 3], "identity": 0},
    "noise": {"title": "Random noise", "unit": "noise level (standard deviation)", "strengths": [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7], "identity": 0},
}


def _kind(model) -> str:
    name = getattr(model, "name", "")
    if name == "numpy_mlp" or hasattr(model, "params"):
        return "numpy"
    if hasattr(model, "net"):
        return "keras"
    raise TypeError(f"cannot look inside {type(model).__name__}: expected a core.models classifier")


def _as_batch(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x[None] if x.ndim == 2 else x


# --- activations ---------------------------------------------------------------------------
def _keras_layers(net):
    """(layer, title) for the layers worth showing: hidden Dense outputs, conv blocks, pools."""
    from keras import layers

    shown, dense, conv, pool = [], 0, 0, 0
    last = net.layers[-1]
    for layer in net.layers:
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


def _run_keras(net, x: np.ndarray, keep=()):
    """Run a Sequential layer by layer in inference mode; returns (probabilities, {layer: output})."""
    out, kept = x, {}
    for layer in net.layers:
        out = layer(out, training=False)
        if layer in keep:
            kept[layer] = np.asarray(out)
    return np.asarray(out), kept


def activations(model, x28) -> list[tuple[str, np.ndarray]]:
    """What each hidden layer computes for one digit, input to output.

    numpy_mlp: [("hidden layer ...", (128,))]; keras_mlp: one (units,) entry per hidden
    Dense layer; lenet: (h, w, channels) after each convolution block's ReLU and each
    max-pooling layer (28x28x16, 14x14x16, 10x10x32, 5x5x32 with the default settings).
    """
    x = _as_batch(x28)[:1]
    if _kind(model) == "numpy":
        _, (_, _, h) = model.forward(x.reshape(1, -1))
        return [(f"hidden layer: {h.shape[1]} ReLU units", h[0].astype(np.float32))]
    shown = _keras_layers(model.net)
    _, kept = _run_keras(model.net, x, keep=[layer for layer, _ in shown])
    return [(title, kept[layer][0].astype(np.float32)) for layer, title in shown]


# --- saliency ------------------------------------------------------------------------------
def logit_gradient(model, x, target) -> np.ndarray:
    """d(logit of class ``target``)/d(pixels) for a batch: x (n, 28, 28), target (n,) -> (n, 28, 28).

    The logit (the score before softmax) rather than the probability, because a
    confident model's probability is flat near 1 and its gradient vanishes.
    """
    x = _as_batch(x)
    target = np.broadcast_to(np.asarray(target, np.intp), (len(x),))
    if _kind(model) == "numpy":
        # Hand-written backprop through z1 = x W1 + b1, h = relu(z1), z2 = h W2 + b2:
        # dz2_c/dh = W2[:, c];  dh/dz1 = [z1 > 0];  dz1/dx = W1^T.
        P = model.params
        z1 = x.reshape(len(x), -1) @ P["W1"] + P["b1"]
        dz1 = P["W2"][:, target].T * (z1 > 0)
        return (dz1 @ P["W1"].T).reshape(x.shape).astype(np.float32)
    import tensorflow as tf

    net = model.net
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        h = xt
        for layer in net.layers[:-1]:
            h = layer(h, training=False)
        last = net.layers[-1]
        logits = tf.matmul(h, last.kernel) + last.bias  # the final Dense without its softmax
        picked = tf.gather(logits, target, axis=1, batch_dims=1)
    return np.asarray(tape.gradient(picked, xt), np.float32)


def integrated_gradients(model, x28, target: int | None = None, steps: int = 32) -> np.ndarray:
    """Signed (28, 28) attribution of the ``target`` logit (default: the predicted digit).

    Integrated gradients (Sundararajan et al. 2017): the gradient averaged along the
    straight path from a blank image to the digit, times the ink. The map adds up to
    logit(digit) - logit(blank): it shares the score out among the drawn pixels,
    positive where ink pushed towards ``target``, negative where it pushed away.
    One batched backward pass over ``steps`` dimmed copies of the digit.
    """
    x = _as_batch(x28)[:1]
    if target is None:
        target = int(model.predict_proba(x).argmax(1)[0])
    alphas = ((np.arange(steps, dtype=np.float32) + 0.5) / steps)[:, None, None]
    grads = logit_gradient(model, alphas * x, target)
    return (x[0] * grads.mean(0)).astype(np.float32)


METHODS = ("integrated_gradients", "gradient", "smoothgrad")


def saliency(model, x28, method: str = "integrated_gradients", signed: bool = False, samples: int = 32,
             sigma: float = 0.15, seed: int = 0) -> np.ndarray:
    """(28, 28) float32: how strongly each pixel moved the predicted digit's score; >= 0 unless ``signed``.

    ``method``: "integrated_gradients" (default; see ``integrated_gradients``) credits only
    the ink, which is what moved the answer away from a blank page; "gradient" is
    |d logit / d pixel| (Simonyan et al. 2013), which also lights up empty pixels where
    ink *would* change the answer; "smoothgrad" averages that gradient over ``samples``
    noisy copies (Smilkov et al. 2017) to remove its speckle.
    """
    x = _as_batch(x28)[:1]
    target = int(model.predict_proba(x).argmax(1)[0])
    if method == "integrated_gradients":
        s = integrated_gradients(model, x, target, steps=samples)
    elif method == "gradient":
        s = logit_gradient(model, x, target)[0]
    elif method == "smoothgrad":
        rng = np.random.default_rng(seed)
        noisy = (x + rng.normal(0, sigma, (samples, 28, 28))).astype(np.float32)
        s = logit_gradient(model, noisy, target).mean(0)
    else:
        raise ValueError(f"unknown saliency method {method!r}; choose from {', '.join(METHODS)}")
    return s.astype(np.float32) if signed else np.abs(s).astype(np.float32)


# --- learnt weights ------------------------------------------------------------------------
def first_layer_weights(model) -> np.ndarray:
    """(units, 28, 28): each first-layer unit's weights laid out as an image (MLPs only)."""
    if _kind(model) == "numpy":
        w = model.params["W1"]
    else:
        from keras import layers

        dense = [layer for layer in model.net.layers if isinstance(layer, layers.Dense)]
        if any(isinstance(layer, layers.Conv2D) for layer in model.net.layers) or not dense:
            raise TypeError(f"{model.name} is not a multilayer perceptron; use conv_filters")
        w = dense[0].kernel.numpy()
    return np.ascontiguousarray(w.T.reshape(-1, 28, 28), np.float32)


def conv_filters(model, layer: int = 0) -> np.ndarray:
    """LeNet's convolution filters, with batch norm's per-channel scale folded in.

    layer=0: (filters, 5, 5), one filter per feature map of the first convolution.
    layer=1: (filters, in_channels, 5, 5): every 5x5 slice of the second convolution.
    Folding in batch norm (gamma / sqrt(variance + eps)) gives the filter the network
    effectively applies, so its sign and relative strength are the real ones.
    """
    from keras import layers

    if _kind(model) != "keras":
        raise TypeError(f"{model.name} has no convolutions")
    net = model.net.layers
    convs = [i for i, lay in enumerate(net) if isinstance(lay, layers.Conv2D)]
    if not convs:
        raise TypeError(f"{model.name} has no convolutions")
    i = convs[layer]
    k = net[i].kernel.numpy().astype(np.float32)  # (5, 5, in, out)
    if i + 1 < len(net) and isinstance(net[i + 1], layers.BatchNormalization):
        bn = net[i + 1]
        gamma = bn.gamma.numpy() if bn.scale else 1.0
        k = k * (gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon))
    k = k.transpose(3, 2, 0, 1)  # (out, in, 5, 5)
    return k[:, 0] if layer == 0 and k.shape[1] == 1 else k


# --- distortions ---------------------------------------------------------------------------
def _dilate(x: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` one-pixel dilations (or erosions if negative) that stay centred.

    core.augment's 2x2 morphology grows a stroke up and to the left; alternating it with
    its mirror image grows the stroke evenly (two steps = one 3x3 dilation).
    """
    op = np.maximum if steps > 0 else np.minimum
    for i in range(abs(steps)):
        if i % 2:
            x = morph(x[:, ::-1, ::-1], op)[:, ::-1, ::-1]
        else:
            x = morph(x, op)
    return x


def distort(x28, rotate: float = 0, shift=(0, 0), scale: float = 1, thicken: float = 0, noise: float = 0, seed: int = 0) -> np.ndarray:
    """A digit (28, 28) or a batch (n, 28, 28), changed on purpose; float32 in [0, 1].

    rotate: degrees anticlockwise; shift: (right, down) in pixels; scale: size factor
    (2 = twice as big); thicken: pixels added to the stroke width (negative thins it;
    fractions blend); noise: standard deviation of Gaussian noise added to each pixel.
    All at their defaults return the input unchanged. Warps use core.augment's bilinear
    sampling (``core.augment.warp``, one map shared by the batch) and its
    stroke morphology, so they match training's augmentation.
    """
    x = np.asarray(x28, np.float32)
    single = x.ndim == 2
    out = _as_batch(x).copy()
    dx, dy = shift
    if rotate or dx or dy or scale != 1:
        if scale <= 0:
            raise ValueError("scale must be positive")
        # Inverse map: for each output pixel, where in the input to read from.
        t = np.deg2rad(rotate)
        cos, sin = np.cos(t) / scale, np.sin(t) / scale
        grid = np.arange(28, dtype=np.float32) - 13.5
        gy, gx = np.meshgrid(grid, grid, indexing="ij")
        gx, gy = gx - dx, gy - dy
        src_x = cos * gx - sin * gy + 13.5  # image y points down, so this turns anticlockwise
        src_y = sin * gx + cos * gy + 13.5
        out = warp(out, src_y.astype(np.float32), src_x.astype(np.float32))
    if thicken:
        whole = int(np.trunc(thicken))
        frac = abs(thicken - whole)
        base = _dilate(out, whole) if whole else out
        if frac:
            step = 1 if thicken > 0 else -1
            base = (1 - frac) * base + frac * _dilate(base, step)
        out = base
    if noise:
        rng = np.random.default_rng(seed)
        out = out + rng.normal(0, noise, out.shape).astype(np.float32)
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    return out[0] if single else out


def distortion_kwargs(kind: str, strength: float) -> dict:
    """The ``distort`` arguments for one distortion ``kind`` at ``strength``."""
    if kind == "rotate":
        return {"rotate": strength}
    if kind == "shift":
        return {"shift": (strength, 0)}
    if kind in ("scale", "thicken", "noise"):
        return {kind: strength}
    raise ValueError(f"unknown distortion {kind!r}; choose from {', '.join(KINDS)}")


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # keras net -> its compiled forward pass
_COMPILED_LOCK = threading.Lock()


def predict_many(model, x, batch: int = 1024) -> np.ndarray:
    """Probabilities (n, 10) for many images, fast: for a Keras model, one compiled forward
    pass per network object (traced once, kept as long as the network), called batch by
    batch. Keras's own ``predict`` sets itself up on every call, several times slower here."""
    x = _as_batch(x)
    if _kind(model) == "numpy" or len(x) == 0:
        return model.predict_proba(x)
    import tensorflow as tf

    net = model.net
    with _COMPILED_LOCK:
        forward = _COMPILED.get(net)
        if forward is None:
            ref = weakref.ref(net)  # the cache must not keep the network alive
            forward = tf.function(lambda t: ref()(t, training=False), autograph=False, reduce_retracing=True,
                                  input_signature=[tf.TensorSpec((None, 28, 28), tf.float32)])
            _COMPILED[net] = forward
    return np.concatenate([forward(x[i : i + batch]).numpy() for i in range(0, len(x), batch)])


def robustness_curve(models: dict, x, y, kind: str, strengths, seed: int = 0) -> dict[str, list[float]]:
    """Accuracy of each model on ``x`` distorted by ``kind`` at each strength.

    models: {name: model}; x (n, 28, 28), y (n,). One batched prediction per model over
    all strengths together. Returns {name: [accuracy per strength]}.
    """
    x = _as_batch(x)
    y = np.asarray(y).astype(np.intp)
    batch = np.concatenate([distort(x, seed=seed, **distortion_kwargs(kind, s)) for s in strengths])
    out = {}
    for name, model in models.items():
        pred = predict_many(model, batch).argmax(1).reshape(len(strengths), len(x))
        out[name] = [float(v) for v in (pred == y).mean(1)]
    return out


# --- rendering -----------------------------------------------------------------------------
_CMAPS = {  # anchor colours, low to high
    "ink": [(255, 255, 255), (0, 0, 0)],  # white paper, black ink
    "heat": [(255, 255, 255), (254, 217, 118), (253, 141, 60), (227, 26, 28), (128, 0, 38)],
    "viridis": [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
    "diverging": [(5, 48, 97), (67, 147, 195), (247, 247, 247), (214, 96, 77), (103, 0, 31)],
}
BACKGROUND = (230, 230, 230)  # fills the gaps (NaN) between mosaic tiles


def colorize(a, cmap: str = "heat", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """2-D array -> RGB uint8 (h, w, 3). NaN becomes the light grey background.

    "diverging" is centred on 0 (blue negative, red positive) unless vmin/vmax are given.
    """
    a = np.asarray(a, np.float32)
    finite = a[np.isfinite(a)]
    if cmap == "diverging" and vmin is None and vmax is None:
        m = float(np.abs(finite).max()) if finite.size else 1.0
        vmin, vmax = -m, m
    vmin = float(finite.min()) if vmin is None and finite.size else (vmin or 0.0)
    vmax = float(finite.max()) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
    t = np.clip((a - vmin) / (vmax - vmin if vmax > vmin else 1.0), 0, 1)
    anchors = np.asarray(_CMAPS[cmap], np.float32)
    pos = np.nan_to_num(t) * (len(anchors) - 1)
    i = np.minimum(pos.astype(np.int32), len(anchors) - 2)
    f = (pos - i)[..., None]
    rgb = anchors[i] * (1 - f) + anchors[i + 1] * f
    rgb[~np.isfinite(a)] = BACKGROUND
    return np.round(rgb).astype(np.uint8)


def mosaic(tiles, cols: int, pad: int = 1, normalize: str = "each") -> np.ndarray:
    """(k, h, w) tiles -> one 2-D array in a grid of ``cols`` columns, NaN between tiles.

    normalize: "each" scales every tile to its own largest absolute value (patterns),
    "global" keeps them comparable, "none" leaves values as they are.
    """
    tiles = np.asarray(tiles, np.float32)
    k, h, w = tiles.shape
    if normalize == "each":
        m = np.abs(tiles).reshape(k, -1).max(1)
        tiles = tiles / np.where(m > 0, m, 1)[:, None, None]
    elif normalize == "global":
        m = float(np.abs(tiles).max()) or 1.0
        tiles = tiles / m
    rows = -(-k // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan, np.float32)
    for j in range(k):
        r, c = divmod(j, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tiles[j]
    return out


def overlay(x28, heat, signed: bool = False, alpha: float = 0.9) -> np.ndarray:
    """The digit in light grey on white with a saliency map on top: RGB uint8 (28, 28, 3).

    Unsigned: red, stronger where ``heat`` is larger. Signed: red where positive (pushed
    towards the answer), blue where negative. Scaled to the 99.5th percentile of |heat|,
    so one extreme pixel does not wash the rest out, with a gamma of 0.6 so
    that middling values are visible too.
    """
    x = np.clip(np.asarray(x28, np.float32), 0, 1)[..., None]
    heat = np.asarray(heat, np.float32)
    top = float(np.percentile(np.abs(heat), 99.5)) or float(np.abs(heat).max()) or 1.0
    h = np.clip(heat / top, -1, 1)[..., None]
    paper = 255 - 70 * x  # white page, ink in light grey so the shape stays visible
    red, blue = np.array([200, 16, 46], np.float32), np.array([33, 102, 172], np.float32)
    w = alpha * np.abs(h) ** 0.6  # a gamma below 1 lifts the middle values into view
    colour = np.where(h >= 0, red, blue) if signed else red
    rgb = paper * (1 - w) + colour * w
    return np.round(rgb).astype(np.uint8)


def upscale(rgb, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement: every pixel becomes a ``factor`` x ``factor`` block."""
    return np.repeat(np.repeat(np.asarray(rgb), factor, 0), factor, 1)


def digit_rgb(x28, size: int = 140) -> np.ndarray:
    """A digit as black ink on white, upscaled crisply to about ``size`` pixels."""
    return upscale(colorize(x28, "ink", 0, 1), max(1, size // 28))
