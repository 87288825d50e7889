"""Training-time data augmentation, shared by all three models (NumPy only).

Drawn digits differ from MNIST's in small rotations, slant, size, position and
pen width even after ``core.preprocess`` has centred them, so each epoch sees
every training image under a fresh random affine warp and stroke-width change.
``Augment`` says how strong those changes may be; it is part of every model's
training settings. Input and output: float32 (n, 28, 28) in [0, 1]. The warp and
the stroke change are ``core.pixels``'s, the ones the rest of the project uses.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from core.pixels import affine, morph

THREADS = int(os.environ.get("MNIST_TRAIN_THREADS", "2"))  # 1 in each of a multi-seed run's parallel workers
CHUNK = 256  # images per piece of work: its ~0.8 MB temporaries stay in cache and are reused by the allocator
# (at 2048 they were mapped and unmapped afresh every time, and page faults doubled the cost)


@dataclass(frozen=True)
class Augment:
    rotate: float = 20.0  # max rotation, degrees either way (people tilt digits 15 degrees and more)
    shear: float = 0.15  # max horizontal shear (slant), as a fraction
    scale: float = 0.12  # max relative size change either way
    shift: float = 2.0  # max translation, pixels either way
    stroke: float = 0.5  # probability of thickening or thinning the strokes by one pixel
    styles: float = 0.0  # probability that a 0, 1 or 7 is shown slashed, flagged or crossed (core.styles)


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
    out = affine(x, m)
    for sign in (1, -1):
        chosen = stroke == sign
        out[chosen] = morph(out[chosen], sign)
    return np.clip(out, 0.0, 1.0, out=out)


def augment(x: np.ndarray, rng: np.random.Generator, a: Augment = Augment(), threads: int = THREADS) -> np.ndarray:
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
