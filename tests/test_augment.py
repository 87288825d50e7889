"""core.augment: the bilinear sampler against a slow reference, stroke morphology, and augment's contract."""

import numpy as np
import pytest

from core.augment import Augment, augment, morph, warp

NONE = Augment(rotate=0, shear=0, scale=0, shift=0, stroke=0)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    x = rng.random((5, 28, 28), dtype=np.float32)
    x[:, :4] = 0  # some background, as in real digits
    return x


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
    thick, thin = morph(x, np.maximum), morph(x, np.minimum)
    assert (thick >= x).all() and (thin <= x).all()
    assert thick.sum() > x.sum() > thin.sum()


def test_augment_with_nothing_to_do_is_identity(images):
    np.testing.assert_array_equal(augment(images, np.random.default_rng(0), NONE), images)


def test_augment_contract(images):
    x = np.repeat(images, 1000, axis=0)  # several chunks, so the threaded path runs
    out = augment(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert not np.array_equal(out, x)
    np.testing.assert_array_equal(out, augment(x, np.random.default_rng(1), threads=1))  # threads change nothing
    assert not np.array_equal(out, augment(x, np.random.default_rng(2)))


def test_rotation_only_turns(images):
    """Pure rotation about the centre keeps a centred blob's ink and centre of mass."""
    yy, xx = np.mgrid[:28, :28] - 13.5
    blob = np.exp(-(yy**2 / 20 + xx**2 / 6)).astype(np.float32)[None].repeat(200, 0)  # an upright ellipse
    out = augment(blob, np.random.default_rng(0), Augment(rotate=15, shear=0, scale=0, shift=0, stroke=0))
    np.testing.assert_allclose(out.sum((1, 2)), blob.sum((1, 2)), rtol=0.02)
    for img in out:
        w = img / img.sum()
        assert abs((w * yy).sum()) < 0.05 and abs((w * xx).sum()) < 0.05
    assert not np.allclose(out, blob, atol=1e-3)
