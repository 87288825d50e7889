"""Training-time data augmentation, shared by all three models (NumPy only).

Drawn digits differ from MNIST's in small rotations, slant, size, position and
pen width even after ``core.preprocess`` has centred them, so each epoch sees
every training image under a fresh random affine warp and stroke-width change,
and optionally an aspect change, an elastic distortion (Simard et al. 2003: a
smooth random displacement field, the wobble of a real hand) and a change of the
ink's tone curve (soft or hard stroke edges). ``Augment`` says how
strong those changes may be; it is part of every model's training settings. Input
and output: float32 (n, 28, 28) in [0, 1]. The warp and the stroke change are
``core.pixels``'s, the ones the rest of the project uses; the elastic field is added
to the affine warp's source coordinates, so an image is still resampled only once.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from core.pixels import GX, GY, SIZE, morph, warp

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
    # New fields default to off, so settings saved before them reproduce exactly (no extra random draws either).
    aspect: float = 0.0  # max relative change of width against height either way (tall thin and wide round hands)
    elastic: float = 0.0  # max RMS displacement, pixels, of a smooth random field (elastic distortion)
    # which of those digits get their style: "07" slashes zeros and crosses sevens but leaves ones unflagged
    # (LeNet: a flag taught it to read a one with a long flag less well, docs/handwriting.md)
    style_digits: str = "017"
    # max degrees a seven may turn anticlockwise: that tips its bar down to the left, and past a few degrees
    # a seven reads as a one with a long flag (docs/handwriting.md); at least ``rotate``: no limit
    seven_tip: float = 180.0
    # largest change of the ink's tone curve: each image's intensities raised to a power g, |log g| up to this.
    # g < 1 widens the soft edge of a stroke and g > 1 narrows it to a hard line, as pens, scanners and the
    # canvas's anti-aliasing differ from MNIST's (docs/handwriting.md)
    ink_gamma: float = 0.0

    def scaled(self, f: float) -> Augment:
        """Every distortion at ``f`` times its strength; the styles' share, digits and the sevens' limit as they are."""
        return dataclasses.replace(self, **{k: getattr(self, k) * f for k in SCALED})


SCALED = ("rotate", "shear", "scale", "shift", "stroke", "aspect", "elastic", "ink_gamma")  # what ``scaled`` scales

FIELDS = 512  # displacement fields in the bank; with 8 flips and transposes, 4,096 different wobbles
SMOOTH = 4.0  # Gaussian smoothing of the fields, pixels (Simard et al.'s sigma for 28x28 digits)


def _smooth_fields(n: int, sigma: float, seed: int) -> np.ndarray:
    """(n, 2, 28, 28) float32 smooth random displacement fields, each of RMS length 1 pixel.

    White noise filtered by a Gaussian, done once (FFT, periodic: the edges are background anyway);
    drawing from this bank costs an index, not a filter per image per epoch.
    """
    noise = np.random.default_rng(seed).uniform(-1, 1, (n, 2, SIZE, SIZE))
    f = np.fft.fftfreq(SIZE)
    gain = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    fields = np.fft.ifft2(np.fft.fft2(noise) * gain).real
    rms = np.sqrt((fields ** 2).sum(1).mean((1, 2)))
    return (fields / rms[:, None, None, None]).astype(np.float32)


_BANK: list[np.ndarray] = []


def bank() -> np.ndarray:
    """The elastic fields, built on first use from a fixed seed (the same bank in every process)."""
    if not _BANK:
        _BANK.append(_smooth_fields(FIELDS, SMOOTH, seed=2003))
    return _BANK[0]


def _draw(n: int, rng: np.random.Generator, a: Augment, labels=None):
    """Every random choice for n images, drawn up front so the result never depends on threading.

    Returns the inverse affine maps (n, 2, 3) (output pixel -> input pixel, centred
    coordinates), a stroke choice per image (+1 thicken, -1 thin, 0 leave), the elastic
    choices (field index, flip code, amplitude) or None, and the tone-curve powers (n,) or None.
    Aspect, elastic and tone draws come after the others and only when asked for, so the older
    settings draw exactly what they drew.
    """
    theta = np.deg2rad(rng.uniform(-a.rotate, a.rotate, n))
    if labels is not None and a.seven_tip < a.rotate:
        # the same draw mapped onto [-seven_tip, rotate] for sevens: nothing else changes
        sevens = np.asarray(labels) == 7
        lo, hi = np.deg2rad(-a.seven_tip), np.deg2rad(a.rotate)
        theta[sevens] = lo + (theta[sevens] + hi) / (2 * hi) * (hi - lo)
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
    if a.aspect > 0:  # widen or narrow about the centre: scale the output's x before the rest of the map
        m[:, :, 0] *= np.exp(rng.uniform(-np.log1p(a.aspect), np.log1p(a.aspect), n))[:, None]
    m[:, :, 2] = 13.5 - m[:, :, 0] * t[:, 0, None] - m[:, :, 1] * t[:, 1, None]
    elastic = None
    if a.elastic > 0:
        elastic = (rng.integers(0, FIELDS, n), rng.integers(0, 8, n).astype(np.int8),
                   rng.uniform(0, a.elastic, n).astype(np.float32))
    tone = np.exp(rng.uniform(-a.ink_gamma, a.ink_gamma, n)).astype(np.float32) if a.ink_gamma > 0 else None
    return m.astype(np.float32), stroke, elastic, tone


def _fields(index: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """The chosen bank fields, each flipped or transposed as its code says (the displacement turned with it)."""
    f = bank()[index].copy()  # (n, 2, 28, 28): (dy, dx)
    for code in range(1, 8):
        k = flip == code
        if not k.any():
            continue
        g = f[k]
        if code & 1:  # mirror left-right
            g = g[..., ::-1]
            g[:, 1] *= -1
        if code & 2:  # mirror top-bottom
            g = g[..., ::-1, :]
            g[:, 0] *= -1
        if code & 4:  # transpose: rows and columns, dy and dx swap
            g = g.transpose(0, 1, 3, 2)[:, ::-1]
        f[k] = g
    return f


def _apply(x: np.ndarray, m: np.ndarray, stroke: np.ndarray, elastic=None, tone=None) -> np.ndarray:
    c = lambda r, k: m[:, r, k, None, None]
    sy = c(1, 0) * GX + c(1, 1) * GY + c(1, 2)
    sx = c(0, 0) * GX + c(0, 1) * GY + c(0, 2)
    if elastic is not None:
        index, flip, amp = elastic
        d = _fields(index, flip) * amp[:, None, None, None]
        sy, sx = sy + d[:, 0], sx + d[:, 1]
    out = warp(x, sy, sx)
    for sign in (1, -1):
        chosen = stroke == sign
        out[chosen] = morph(out[chosen], sign)
    np.clip(out, 0.0, 1.0, out=out)
    if tone is not None:  # 0 and 1 stay put: background stays background, the stroke's core stays full ink
        np.power(out, tone[:, None, None], out=out)
    return out


def augment(x: np.ndarray, rng: np.random.Generator, a: Augment = Augment(), threads: int = THREADS,
            labels=None) -> np.ndarray:
    """One random distortion per image; deterministic for a given generator state.

    ``labels`` (the digits, (n,)) lets ``a.seven_tip`` limit how far sevens turn; without them
    every image is treated alike.

    Works in chunks of ``CHUNK`` images on ``threads`` threads (NumPy releases the GIL in
    its loops); the output is the same whatever the thread count.
    """
    m, stroke, elastic, tone = _draw(len(x), rng, a, labels)
    out = np.empty(x.shape, np.float32)

    def piece(start: int) -> None:
        end = start + CHUNK
        e = None if elastic is None else tuple(v[start:end] for v in elastic)
        out[start:end] = _apply(x[start:end], m[start:end], stroke[start:end], e,
                                None if tone is None else tone[start:end])

    starts = range(0, len(x), CHUNK)
    if threads > 1 and len(x) > CHUNK:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(piece, starts))
    else:
        for start in starts:
            piece(start)
    return out
