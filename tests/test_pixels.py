"""core.pixels: the bilinear sampler and the stroke morphology against slow, obvious references."""

import numpy as np
import pytest

from core.pixels import morph, warp


@pytest.fixture(scope="module")
def images(noise_images):
    return noise_images


def reference_warp(img, sy, sx):
    """Bilinear sampling pixel by pixel, zero outside the image: the definition, slowly."""
    def at(i, j):
        return img[i, j] if 0 <= i < 28 and 0 <= j < 28 else 0.0

    out = np.zeros((28, 28))
    for i in range(28):
        for j in range(28):
            y, x = sy[i, j], sx[i, j]
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            fy, fx = y - y0, x - x0
            out[i, j] = ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
                         + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))
    return out


def test_warp_matches_reference(images):
    rng = np.random.default_rng(0)
    # up to 0.99 px outside the image: bilinear reads a blend of the edge and background
    sy, sx = rng.uniform(-0.99, 27.99, (2, len(images), 28, 28)).astype(np.float32)
    got = warp(images, sy, sx)
    assert got.dtype == np.float32
    for k in range(len(images)):
        np.testing.assert_allclose(got[k], reference_warp(images[k], sy[k], sx[k]), atol=1e-5)


def test_warp_far_outside_reads_background(images):
    far = np.full((28, 28), -5.0, np.float32)
    assert not warp(images, far, far).any()


def test_warp_whole_pixel_shift_is_exact(images):
    gy, gx = np.meshgrid(np.arange(28, dtype=np.float32), np.arange(28, dtype=np.float32), indexing="ij")
    moved = warp(images, gy - 1, gx - 2)  # read one up and two left: the digit moves down and right
    np.testing.assert_array_equal(moved[:, 1:, 2:], images[:, :-1, :-2])
    assert not moved[:, 0].any() and not moved[:, :, :2].any()


def test_morph_thickens_and_thins(images):
    x = (images > 0.7).astype(np.float32)
    thick, thin = morph(x, 1), morph(x, -1)
    assert (thick >= x).all() and (thin <= x).all()
    assert thick.sum() > x.sum() > thin.sum()
    np.testing.assert_array_equal(morph(x, 0), x)


SQUARE = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
CROSS = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
HALF = [(0, 0), (1, 0), (0, 1), (1, 1)]  # the 2x2 step: grows up and to the left


def reference_morph(img, steps, op):
    """Pixel by pixel: each step takes op over the listed neighbours, outside the image counting as 0."""
    out = img.copy()
    for offsets in steps:
        prev, out = out, np.empty_like(out)
        h, w = prev.shape
        for i in range(h):
            for j in range(w):
                vals = [prev[i + dy, j + dx] if 0 <= i + dy < h and 0 <= j + dx < w else 0.0 for dy, dx in offsets]
                out[i, j] = op(vals)
    return out


@pytest.mark.parametrize("width, steps", [
    (1, [HALF]), (2, [SQUARE]), (3, [SQUARE, HALF]), (4, [SQUARE, CROSS]), (5, [SQUARE, CROSS, HALF]),
])
def test_morph_matches_reference(images, width, steps):
    """One routine for every stroke change: the steps it takes, pixel by pixel, both ways."""
    x = images[:2]
    for sign, op in ((1, max), (-1, min)):
        got = morph(x, sign * width)
        for k in range(len(x)):
            np.testing.assert_array_equal(got[k], reference_morph(x[k], steps, op))
    np.testing.assert_array_equal(morph(x[0], width), morph(x, width)[0])  # one image or a batch alike


