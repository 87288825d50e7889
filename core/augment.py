"""Training-time data augmentation, shared by all three models (NumPy only).

Drawn digits differ from MNIST's in small rotations, slant, size, position and
pen width even after ``core.preprocess`` has centred them, so each epoch sees
every training image under a fresh random affine warp and stroke-width change.
Input and output: float32 (n, 28, 28) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Augment:
    rotate: float = 15.0  # max rotation, degrees either way (people tilt digits up to ~15 degrees)
    shear: float = 0.15  # max horizontal shear (slant), as a fraction
    scale: float = 0.12  # max relative size change either way
    shift: float = 2.0  # max translation, pixels either way
    stroke: float = 0.5  # probability of thickening or thinning the strokes by one pixel


def _affine(x: np.ndarray, rng: np.random.Generator, a: Augment) -> np.ndarray:
    n = len(x)
    theta = np.deg2rad(rng.uniform(-a.rotate, a.rotate, n))
    s = 1.0 + rng.uniform(-a.scale, a.scale, n)
    sh = rng.uniform(-a.shear, a.shear, n)
    t = rng.uniform(-a.shift, a.shift, (n, 2))
    # Inverse map: for every output pixel, where in the input to sample from.
    cos, sin = np.cos(theta) / s, np.sin(theta) / s
    grid = np.arange(28, dtype=np.float32) - 13.5
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    gx = gx[None] - t[:, 0, None, None]
    gy = gy[None] - t[:, 1, None, None]
    src_x = cos[:, None, None] * gx + sin[:, None, None] * gy + sh[:, None, None] * gy + 13.5
    src_y = -sin[:, None, None] * gx + cos[:, None, None] * gy + 13.5
    return _bilinear(x, src_y.astype(np.float32), src_x.astype(np.float32))


def _bilinear(x: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    n = len(x)
    padded = np.zeros((n, 30, 30), np.float32)  # one pixel of background all round
    padded[:, 1:29, 1:29] = x
    sy = np.clip(sy + 1, 0, 28.999)
    sx = np.clip(sx + 1, 0, 28.999)
    y0, x0 = sy.astype(np.int32), sx.astype(np.int32)
    fy, fx = sy - y0, sx - x0
    flat = padded.reshape(n, -1)
    idx = y0 * 30 + x0
    rows = np.arange(n)[:, None]
    idx = idx.reshape(n, -1)
    v00, v01 = flat[rows, idx], flat[rows, idx + 1]
    v10, v11 = flat[rows, idx + 30], flat[rows, idx + 31]
    fy, fx = fy.reshape(n, -1), fx.reshape(n, -1)
    top = v00 + (v01 - v00) * fx
    bottom = v10 + (v11 - v10) * fx
    return (top + (bottom - top) * fy).reshape(n, 28, 28)


def _morph(x: np.ndarray, op) -> np.ndarray:
    """2x2 grey-level dilation (op=np.maximum) or erosion (op=np.minimum)."""
    p = np.pad(x, ((0, 0), (0, 1), (0, 1)))
    return op(op(p[:, :-1, :-1], p[:, 1:, :-1]), op(p[:, :-1, 1:], p[:, 1:, 1:]))


def augment(x: np.ndarray, rng: np.random.Generator, a: Augment = Augment()) -> np.ndarray:
    """One random distortion per image; deterministic for a given generator state."""
    out = _affine(x, rng, a)
    pick = rng.random(len(x))
    thick, thin = pick < a.stroke / 2, (pick >= a.stroke / 2) & (pick < a.stroke)
    out[thick] = _morph(out[thick], np.maximum)
    out[thin] = _morph(out[thin], np.minimum)
    return np.clip(out, 0.0, 1.0, out=out)
