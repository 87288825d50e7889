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


NEW = (Augment(elastic=2.5), Augment(aspect=0.3), Augment(elastic=2.0, aspect=0.25))


@pytest.mark.parametrize("a", NEW, ids=["elastic", "aspect", "both"])
def test_new_augmentations_keep_the_contract(images, a):
    """Shapes, range, determinism under a seed and any thread count, for elastic distortion and aspect."""
    x = np.repeat(images, 200, axis=0)
    out = augment(x, np.random.default_rng(4), a)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out, augment(x, np.random.default_rng(4), a, threads=1))
    assert not np.array_equal(out, augment(x, np.random.default_rng(5), a))
    assert not np.array_equal(out, augment(x, np.random.default_rng(4)))  # they really change something


def test_new_fields_default_to_off_and_draw_nothing(images):
    """Settings saved before elastic and aspect existed reproduce exactly: the same images, the same generator state."""
    assert Augment().elastic == 0 and Augment().aspect == 0
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    plain = augment(images, r1, Augment(rotate=10, elastic=0, aspect=0))
    np.testing.assert_array_equal(plain, augment(images, r2, Augment(rotate=10)))
    assert r1.random() == r2.random()
    r3 = np.random.default_rng(7)
    augment(images, r3, Augment(rotate=10, elastic=1.0))
    assert r3.random() != np.random.default_rng(7).random()  # elastic draws come after, only when asked for


def test_elastic_fields_are_smooth_and_of_unit_size():
    from core.augment import FIELDS, bank

    f = bank()
    assert f.shape == (FIELDS, 2, 28, 28) and f.dtype == np.float32
    np.testing.assert_allclose(np.sqrt((f**2).sum(1).mean((1, 2))), 1.0, rtol=1e-4)
    # smooth: neighbouring pixels move almost alike (white noise would differ as much as it varies)
    step = np.abs(np.diff(f, axis=3)).mean()
    assert step < 0.25 * np.abs(f).mean()
    assert bank() is f  # built once


def test_elastic_wobbles_but_keeps_the_ink_in_place(images):
    """A pure elastic distortion moves ink locally: the mass and its centre stay, the pixels change."""
    yy, xx = np.mgrid[:28, :28] - 13.5
    ring = np.clip(1.5 - np.abs(np.hypot(yy, xx * 1.3) - 7), 0, 1).astype(np.float32)[None].repeat(100, 0)
    out = augment(ring, np.random.default_rng(0), Augment(rotate=0, shear=0, scale=0, shift=0, stroke=0, elastic=2.0))
    ratio = out.sum((1, 2)) / ring.sum((1, 2))  # stretched parts gain ink, squeezed parts lose it
    assert abs(np.median(ratio) - 1) < 0.05 and np.all(np.abs(ratio - 1) < 0.5)
    for img in out:
        w = img / img.sum()
        assert abs((w * yy).sum()) < 2.5 and abs((w * xx).sum()) < 2.5  # no further than the field moves
    moved = np.abs(out - ring).sum((1, 2)) / ring.sum((1, 2))
    assert np.median(moved) > 0.1


def test_aspect_changes_width_not_height():
    """A centred square: aspect alone scales its width by at most 1 + aspect either way, its height not at all."""
    sq = np.zeros((300, 28, 28), np.float32)
    sq[:, 8:20, 8:20] = 1
    out = augment(sq, np.random.default_rng(0), Augment(rotate=0, shear=0, scale=0, shift=0, stroke=0, aspect=0.3))
    width = out.sum(2).max(1)  # ink across the middle row
    height = out.sum(1).max(1)
    np.testing.assert_allclose(height, 12, atol=0.01)
    assert width.min() >= 12 / 1.3 - 0.5 and width.max() <= 12 * 1.3 + 0.5
    assert width.min() < 10.5 and width.max() > 13.5  # both narrower and wider happen


def test_the_augmentation_sheet_command_writes_a_png(tmp_path):
    from PIL import Image

    from tools.augment_sheet import DIGITS, main

    out = tmp_path / "sheet.png"
    assert main(["--out", str(out), "--elastic", "1.5"]) == 0
    with Image.open(out) as im:
        assert im.format == "PNG" and im.height > 2 * len(DIGITS) * 28 and im.width > im.height
        grey = np.asarray(im.convert("L"))
    assert grey.max() == 255 and (grey < 20).mean() > 0.3  # white digits on black, not a blank page
