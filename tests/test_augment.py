"""core.augment: augment's contract (shapes, range, determinism under a seed and any thread count)."""

import numpy as np
import pytest

from core.augment import Augment, augment

NONE = Augment(rotate=0, shear=0, scale=0, shift=0, stroke=0)


@pytest.fixture(scope="module")
def images(noise_images):
    return noise_images


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
