"""Explanations: why a model gives its answer and how easily it is fooled.

    from core import explain
    explain.saliency(model, x28)          # (28, 28) >= 0: which pixels moved the answer
    explain.distort(x28, rotate=20)       # one digit, rotated / shifted / scaled / thickened / noisy
    explain.robustness_curve(models, x, y, "rotate", [0, 15, 30])   # {name: [accuracy per strength]}

What a network computes inside (activations, weights, filters) and its gradients are the
models' own hooks (``core.models.base``); this module builds explanations on top of them,
the same for the three model classes whatever their settings, so a model trained in the
browser is explained like the committed ones. Turning these arrays into pictures is the
dashboard's job. NumPy only. Images are float32 (28, 28) in [0, 1], ink high.
"""

from __future__ import annotations

import numpy as np

from core.pixels import affine, morph

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


def _as_batch(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x[None] if x.ndim == 2 else x


# --- saliency ------------------------------------------------------------------------------
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
    grads = model.logit_gradient(alphas * x, target)
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
        s = model.logit_gradient(x, target)[0]
    elif method == "smoothgrad":
        rng = np.random.default_rng(seed)
        noisy = (x + rng.normal(0, sigma, (samples, 28, 28))).astype(np.float32)
        s = model.logit_gradient(noisy, target).mean(0)
    else:
        raise ValueError(f"unknown saliency method {method!r}; choose from {', '.join(METHODS)}")
    return s.astype(np.float32) if signed else np.abs(s).astype(np.float32)


# --- distortions ---------------------------------------------------------------------------
def distort(x28, rotate: float = 0, shift=(0, 0), scale: float = 1, thicken: float = 0, noise: float = 0, seed: int = 0) -> np.ndarray:
    """A digit (28, 28) or a batch (n, 28, 28), changed on purpose; float32 in [0, 1].

    rotate: degrees anticlockwise; shift: (right, down) in pixels; scale: size factor
    (2 = twice as big); thicken: pixels added to the stroke width (negative thins it;
    fractions blend); noise: standard deviation of Gaussian noise added to each pixel.
    All at their defaults return the input unchanged. Warps and stroke changes are
    ``core.pixels``'s, so they match training's augmentation and the preprocessing.
    """
    x = np.asarray(x28, np.float32)
    single = x.ndim == 2
    out = _as_batch(x).copy()
    dx, dy = shift
    if rotate or dx or dy or scale != 1:
        if scale <= 0:
            raise ValueError("scale must be positive")
        # Inverse map: for each output pixel (centred gx, gy), where in the input to read from:
        # src_x = cos (gx - dx) - sin (gy - dy) + 13.5; image y points down, so this turns anticlockwise.
        t = np.deg2rad(rotate)
        cos, sin = np.cos(t) / scale, np.sin(t) / scale
        out = affine(out, [[cos, -sin, 13.5 - cos * dx + sin * dy], [sin, cos, 13.5 - sin * dx - cos * dy]])
    if thicken:
        whole = int(np.trunc(thicken))
        frac = abs(thicken - whole)
        base = morph(out, whole)
        if frac:
            step = 1 if thicken > 0 else -1
            base = (1 - frac) * base + frac * morph(base, step)
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
        pred = model.predict(batch).reshape(len(strengths), len(x))
        out[name] = [float(v) for v in (pred == y).mean(1)]
    return out
