"""Training-time data augmentation, shared by all three models (NumPy only).

Drawn digits differ from MNIST's in small rotations, slant, size, position and
pen width even after ``core.preprocess`` has centred them, so each epoch sees
every training image under a fresh random affine warp and stroke-width change.
Input and output: float32 (n, 28, 28) in [0, 1].

``warp`` (bilinear sampling) and ``morph`` (stroke width) are public so that
``core.inside`` distorts digits exactly the way training did.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

CHUNK = 256  # images per piece of work: its ~0.8 MB temporaries stay in cache and are reused by the allocator
# (at 2048 they were mapped and unmapped afresh every time, and page faults doubled the cost)
_GRID = np.arange(28, dtype=np.float32) - 13.5  # pixel centres, origin at the image centre
_GY, _GX = np.meshgrid(_GRID, _GRID, indexing="ij")


@dataclass(frozen=True)
class Augment:
    rotate: float = 20.0  # max rotation, degrees either way (people tilt digits 15 degrees and more)
    shear: float = 0.15  # max horizontal shear (slant), as a fraction
    scale: float = 0.12  # max relative size change either way
    shift: float = 2.0  # max translation, pixels either way
    stroke: float = 0.5  # probability of thickening or thinning the strokes by one pixel


def warp(x: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """Bilinear resampling: output pixel (i, j) of image k reads x[k] at (sy, sx), background outside.

    x: float32 (n, 28, 28). sy, sx: float32 source coordinates, either (n, 28, 28), one map
    per image, or (28, 28), one map shared by the batch (then gathered far more cheaply).
    """
    n = len(x)
    padded = np.zeros((n, 30, 30), np.float32)  # one pixel of background all round
    padded[:, 1:29, 1:29] = x
    sy = np.clip(sy + np.float32(1), 0, np.float32(28.999))
    sx = np.clip(sx + np.float32(1), 0, np.float32(28.999))
    y0, x0 = np.floor(sy), np.floor(sx)
    fy, fx = sy - y0, sx - x0  # float32: an int32 operand here would promote all that follows to float64
    idx = y0.astype(np.int32) * 30 + x0.astype(np.int32)
    if idx.ndim == 2:  # shared map: the same four columns for every image
        flat, idx, axis = padded.reshape(n, -1), idx.ravel(), 1
        fy, fx = fy.ravel(), fx.ravel()
    else:  # one map per image: index the whole batch as one flat array
        flat, axis = padded.ravel(), None
        idx = (idx + (np.arange(n, dtype=np.int32) * 900)[:, None, None]).reshape(n, -1)
        fy, fx = fy.reshape(n, -1), fx.reshape(n, -1)
    # the four neighbours: the same indices into views shifted by 0, 1, 30 and 31 pixels
    shifted = (lambda k: flat[..., k:]) if axis else (lambda k: flat[k:])
    v00, v01, v10, v11 = (np.take(shifted(k), idx, axis=axis) for k in (0, 1, 30, 31))
    top = v00 + (v01 - v00) * fx
    bottom = v10 + (v11 - v10) * fx
    return (top + (bottom - top) * fy).reshape(n, 28, 28)


def morph(x: np.ndarray, op) -> np.ndarray:
    """2x2 grey-level dilation (op=np.maximum) or erosion (op=np.minimum) of (n, 28, 28)."""
    p = np.pad(x, ((0, 0), (0, 1), (0, 1)))
    return op(op(p[:, :-1, :-1], p[:, 1:, :-1]), op(p[:, :-1, 1:], p[:, 1:, 1:]))


def _draw(n: int, rng: np.random.Generator, a: Augment) -> tuple[np.ndarray, np.ndarray]:
    """Every random choice for n images, drawn up front so the result never depends on threading.

    Returns the inverse affine maps (n, 2, 3) (output pixel -> input pixel, centred
    coordinates) and a stroke choice per image: +1 thicken, -1 thin, 0 leave.
    """
    theta = np.deg2rad(rng.uniform(-a.rotate, a.rotate, n))
    s = 1.0 + rng.uniform(-a.scale, a.scale, n)
    sh = rng.uniform(-a.shear, a.shear, n)
    t = rng.uniform(-a.shift, a.shift, (n, 2))
    pick = rng.random(n)
    stroke = np.where(pick < a.stroke / 2, 1, np.where(pick < a.stroke, -1, 0)).astype(np.int8)
    cos, sin = np.cos(theta) / s, np.sin(theta) / s
    # src_x = cos*(gx - tx) + (sin + sh)*(gy - ty);  src_y = -sin*(gx - tx) + cos*(gy - ty)
    m = np.empty((n, 2, 3))
    m[:, 0, 0], m[:, 0, 1] = cos, sin + sh
    m[:, 1, 0], m[:, 1, 1] = -sin, cos
    m[:, :, 2] = 13.5 - m[:, :, 0] * t[:, 0, None] - m[:, :, 1] * t[:, 1, None]
    return m.astype(np.float32), stroke


def _apply(x: np.ndarray, m: np.ndarray, stroke: np.ndarray) -> np.ndarray:
    c = lambda r, k: m[:, r, k, None, None]  # noqa: E731  (n, 1, 1) coefficient for broadcasting
    out = warp(x, c(1, 0) * _GX + c(1, 1) * _GY + c(1, 2), c(0, 0) * _GX + c(0, 1) * _GY + c(0, 2))
    for sign, op in ((1, np.maximum), (-1, np.minimum)):
        chosen = stroke == sign
        out[chosen] = morph(out[chosen], op)
    return np.clip(out, 0.0, 1.0, out=out)


def augment(x: np.ndarray, rng: np.random.Generator, a: Augment = Augment(), threads: int = 2) -> np.ndarray:
    """One random distortion per image; deterministic for a given generator state.

    Works in chunks of ``CHUNK`` images on ``threads`` threads (NumPy releases the GIL in
    its loops); the output is the same whatever the thread count.
    """
    m, stroke = _draw(len(x), rng, a)
    out = np.empty(x.shape, np.float32)

    def piece(start: int) -> None:
        end = start + CHUNK
        out[start:end] = _apply(x[start:end], m[start:end], stroke[start:end])

    starts = range(0, len(x), CHUNK)
    if threads > 1 and len(x) > CHUNK:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(piece, starts))
    else:
        for start in starts:
            piece(start)
    return out
