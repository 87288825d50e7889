"""core.augment: augment's contract (shapes, range, determinism under a seed and any thread count)."""

import dataclasses

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


NEW = (Augment(elastic=2.5), Augment(aspect=0.3), Augment(elastic=2.0, aspect=0.25), Augment(ink_gamma=0.7))


@pytest.mark.parametrize("a", NEW, ids=["elastic", "aspect", "both", "ink_gamma"])
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
    """Settings saved before elastic, aspect and ink_gamma existed reproduce exactly: the same images, the same
    generator state."""
    assert Augment().elastic == 0 and Augment().aspect == 0 and Augment().ink_gamma == 0
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    plain = augment(images, r1, Augment(rotate=10, elastic=0, aspect=0, ink_gamma=0))
    np.testing.assert_array_equal(plain, augment(images, r2, Augment(rotate=10)))
    assert r1.random() == r2.random()
    r3 = np.random.default_rng(7)
    augment(images, r3, Augment(rotate=10, elastic=1.0))
    assert r3.random() != np.random.default_rng(7).random()  # elastic draws come after, only when asked for


def test_ink_gamma_changes_only_the_tone_of_the_ink():
    """A tone curve keeps background and full ink where they are, keeps the order of grey levels within an
    image, and makes each image's soft edges uniformly fainter or stronger; both ways happen."""
    ramp = np.linspace(0, 1, 28, dtype=np.float32)[None, None, :].repeat(28, 1).repeat(400, 0)  # 0 .. 1 left to right
    a = Augment(rotate=0, shear=0, scale=0, shift=0, stroke=0, ink_gamma=0.7)
    out = augment(ramp, np.random.default_rng(0), a)
    np.testing.assert_allclose(out[:, :, 0], 0, atol=1e-6)
    np.testing.assert_allclose(out[:, :, -1], 1, atol=1e-6)
    assert (np.diff(out, axis=2) >= 0).all()  # still a ramp: grey levels keep their order
    power = np.log(out[:, 0, 14]) / np.log(ramp[:, 0, 14])  # each image's exponent, from its middle grey
    np.testing.assert_allclose(out, ramp ** power[:, None, None], atol=1e-5)  # one curve per image
    assert power.min() < 0.6 and power.max() > 1.6 and np.all((power > np.exp(-0.7) - 1e-4) & (power < np.exp(0.7) + 1e-4))


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


def _turns(m: np.ndarray) -> np.ndarray:
    """Degrees each inverse map turns by, for maps with no slant or size change."""
    return np.rad2deg(np.arctan2(m[:, 0, 1], m[:, 0, 0]))


def test_seven_tip_limits_how_far_sevens_turn_and_nothing_else():
    """``seven_tip`` 5: sevens turn between -5 and +20 degrees, every other digit -20 to +20 as before, from the
    very same draws (the same generator state after)."""
    from core.augment import _draw

    a = Augment(rotate=20, shear=0, scale=0, shift=0, stroke=0, seven_tip=5)
    labels = np.arange(4000) % 10
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    limited, plain = _draw(4000, r1, a, labels)[0], _draw(4000, r2, a)[0]  # no labels: every image alike
    assert r1.random() == r2.random()
    sevens = labels == 7
    np.testing.assert_array_equal(limited[~sevens], plain[~sevens])
    t7, t = _turns(limited[sevens]), _turns(plain[~sevens])
    assert t7.min() >= -5 - 1e-3 and t7.min() < -4 and t7.max() > 19
    assert t.min() < -19 and t.max() > 19
    np.testing.assert_array_equal(_draw(4000, np.random.default_rng(3), Augment(rotate=20, shear=0, scale=0, shift=0,
                                                                                   stroke=0), labels)[0], plain)


def test_seven_tip_keeps_a_sevens_bar_from_tipping_down_to_the_left():
    """A bar across the top, as a seven's: with ``seven_tip`` 0 it only ever turns the other way (its left end up),
    whereas a one's copy of it turns both ways."""
    bar = np.zeros((400, 28, 28), np.float32)
    bar[:, 8:10, 6:22] = 1
    labels = np.repeat([7, 1], 200)
    out = augment(bar, np.random.default_rng(0), Augment(rotate=20, shear=0, scale=0, shift=0, stroke=0, seven_tip=0),
                  labels=labels)
    rows, cols = np.mgrid[:28, :28]

    def slope(img):  # rows down per column right: > 0 when the left end is the higher one
        w = img / img.sum()
        c, r = (w * cols).sum(), (w * rows).sum()
        return (w * (cols - c) * (rows - r)).sum() / (w * (cols - c) ** 2).sum()

    s7, s1 = np.array([slope(o) for o in out[:200]]), np.array([slope(o) for o in out[200:]])
    assert s7.min() > -0.02 and s7.max() > 0.2
    assert s1.min() < -0.2 and s1.max() > 0.2


def test_scaled_scales_every_distortion_and_nothing_else():
    from core.augment import SCALED

    a = Augment(rotate=20, shear=0.15, scale=0.12, shift=2, stroke=0.5, styles=0.3, aspect=0.2, elastic=1.0,
                style_digits="07", seven_tip=5, ink_gamma=0.7)
    half = a.scaled(0.5)
    for field in dataclasses.fields(Augment):
        expected = getattr(a, field.name) * 0.5 if field.name in SCALED else getattr(a, field.name)
        assert getattr(half, field.name) == pytest.approx(expected), field.name
    assert a.scaled(1.0) == a
    assert {"styles", "style_digits", "seven_tip"}.isdisjoint(SCALED)  # what a digit is taught, not how hard


def test_gentler_augmentation_moves_strokes_less(images):
    """Half the strength, from the same draws: each image moves less from where it was."""
    a = Augment(rotate=20, shear=0.15, scale=0.12, shift=2, stroke=0)
    x = np.repeat(images, 50, axis=0)
    full = augment(x, np.random.default_rng(4), a)
    half = augment(x, np.random.default_rng(4), a.scaled(0.5))
    moved = lambda out: np.abs(out - x).sum((1, 2))
    assert (moved(half) < moved(full)).mean() > 0.9
