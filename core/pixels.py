"""The 28x28 pixel grid and the two operations every part of the project does to digits on it:
bilinear resampling through an affine map (``affine``, ``warp``) and changing the stroke width
(``morph``). Augmentation, preprocessing, test-time augmentation (``views``) and the robustness
explorer all use these, so a digit is distorted, thickened or thinned the same way wherever it
happens. NumPy only.
"""

from __future__ import annotations

import numpy as np

SIZE = 28
GRID = np.arange(SIZE, dtype=np.float32) - np.float32(13.5)  # pixel centres, origin at the image centre
GY, GX = np.meshgrid(GRID, GRID, indexing="ij")


def warp(x: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """Bilinear resampling: output pixel (i, j) of image k reads x[k] at (sy, sx), background outside.

    x: float32 (n, 28, 28). sy, sx: float32 source coordinates (pixel indices), either
    (n, 28, 28), one map per image, or (28, 28), one map shared by the batch (gathered far
    more cheaply).
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


def affine(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Resample x (n, 28, 28) through inverse affine maps: output pixel -> source pixel.

    m: float32 (2, 3), one map for the batch, or (n, 2, 3), one per image. Row 0 gives the
    source column and row 1 the source row (pixel indices) from the output pixel's centred
    coordinates (GX, GY, 1).
    """
    m = np.asarray(m, np.float32)
    if m.ndim == 2:
        return warp(x, m[1, 0] * GX + m[1, 1] * GY + m[1, 2], m[0, 0] * GX + m[0, 1] * GY + m[0, 2])
    c = lambda r, k: m[:, r, k, None, None]
    return warp(x, c(1, 0) * GX + c(1, 1) * GY + c(1, 2), c(0, 0) * GX + c(0, 1) * GY + c(0, 2))


def morph(x: np.ndarray, width: int) -> np.ndarray:
    """Grey dilation (``width`` > 0) or erosion (< 0) that changes strokes' width by |width| pixels.

    Each pair of pixels is one 3x3 step moving both edges of a stroke, alternating a square
    and a cross so that the steps approximate a disc (diagonal strokes change as much as
    straight ones); an odd pixel is one 2x2 step, which grows the stroke up and to the left.
    Works on the last two axes of ``x``, any leading shape; outside the image is background (0).
    """
    x = np.asarray(x)
    if not width:
        return x
    op = np.maximum if width > 0 else np.minimum
    lead = [(0, 0)] * (x.ndim - 2)
    for i in range(abs(width) // 2):
        p = np.pad(x, [*lead, (1, 1), (1, 1)])
        c = op(op(p[..., :-2, 1:-1], p[..., 2:, 1:-1]), op(p[..., 1:-1, :-2], p[..., 1:-1, 2:]))
        if i % 2 == 0:  # square step: the diagonals too
            c = op(c, op(op(p[..., :-2, :-2], p[..., :-2, 2:]), op(p[..., 2:, :-2], p[..., 2:, 2:])))
        x = op(x, c)
    if abs(width) % 2:
        p = np.pad(x, [*lead, (0, 1), (0, 1)])
        x = op(op(p[..., :-1, :-1], p[..., 1:, :-1]), op(p[..., :-1, 1:], p[..., 1:, 1:]))
    return x


# Test-time augmentation: the digit as drawn plus small warps a hand makes anyway, (rotation degrees,
# slant, relative size). A model that reads all of them and averages (``Model.tta_proba``) answers for
# the digit a little turned or slanted as well as for the one drawn (docs/handwriting.md).
TTA_WARPS = ((0, 0, 0), (-8, 0, 0), (8, 0, 0), (0, -0.15, 0), (0, 0.15, 0))


def views(x: np.ndarray, warps=TTA_WARPS) -> np.ndarray:
    """Digits (n, 28, 28) -> (n, len(warps), 28, 28): each digit and its warped copies, about the centre."""
    x = np.asarray(x, np.float32)
    m = np.zeros((len(warps), 2, 3), np.float32)
    for k, (deg, shear, size) in enumerate(warps):
        c, s = np.cos(np.deg2rad(deg)) / (1 + size), np.sin(np.deg2rad(deg)) / (1 + size)
        m[k] = [[c, s + shear, 13.5], [-s, c, 13.5]]
    n, k = len(x), len(warps)
    if n < 4:  # a digit or two (the Draw page): one call, a map per copy
        out = affine(np.repeat(x, k, 0), np.tile(m, (n, 1, 1))).reshape(n, k, SIZE, SIZE)
    else:  # many: one shared map per warp, gathered far more cheaply (8x for the test set)
        out = np.stack([affine(x, m[j]) for j in range(k)], 1)
    return np.clip(out, 0, 1)
