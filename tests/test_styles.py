"""The handwriting styles added to MNIST training digits (core.styles): each adds its stroke where a
person would, and nowhere else; shapes, range and determinism hold; training uses them when asked."""

import numpy as np
import pytest

from core.data import scale
from core.styles import (
    STYLES,
    close_four,
    cross_seven,
    flag_one,
    open_four,
    restyle,
    slash_zero,
    styled_pool,
)


@pytest.fixture(scope="module")
def digits(mnist):
    (x, y), _ = mnist
    return scale(x[:2000]), y[:2000]


def first(digits, d, k=20):
    x, y = digits
    return x[np.flatnonzero(y == d)[:k]]


def added(before, after):
    return (after - before) > 0.3


@pytest.mark.parametrize("d", sorted(STYLES))
def test_styles_keep_shape_range_and_are_deterministic(digits, d):
    for x in first(digits, d, 10):
        a = STYLES[d](x, np.random.default_rng(5))
        b = STYLES[d](x, np.random.default_rng(5))
        assert a.shape == (28, 28) and a.dtype == np.float32
        assert a.min() >= 0 and a.max() <= 1
        np.testing.assert_array_equal(a, b)
        if d == 4:  # the four's top is closed: the old arm goes, a diagonal comes (unless it has no arm to close)
            assert added(x, a).sum() >= 3 or np.array_equal(a, x)
        else:
            assert (a >= x - 1e-6).all()  # a stroke is added, nothing is erased
            assert added(x, a).sum() >= 3  # and it is really there


def test_most_fours_get_closed(digits):
    fours = first(digits, 4, 50)
    changed = [added(x, close_four(x, np.random.default_rng(1))).sum() >= 3 for x in fours]
    assert np.mean(changed) > 0.6  # a four whose arm rises above its stem is left alone


def test_restyled_digits_are_back_in_mnists_frame(digits):
    """restyle = the stroke, then MNIST's recipe: longer side at most 20 pixels, centre of mass at 14."""
    for d in sorted(STYLES):
        for x in first(digits, d, 10):
            a = restyle(x, d, np.random.default_rng(8))
            assert a.shape == (28, 28) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
            rows, cols = np.nonzero(a > 0.3)
            assert max(np.ptp(rows), np.ptp(cols)) <= 21
            r = np.arange(28)
            assert abs(a.sum(1) @ r / a.sum() - 14) < 0.6 and abs(a.sum(0) @ r / a.sum() - 14) < 0.6
            np.testing.assert_array_equal(a, restyle(x, d, np.random.default_rng(8)))


def test_other_digits_are_left_alone(digits):
    x, y = digits
    for i in np.flatnonzero(~np.isin(y, list(STYLES)))[:30]:
        np.testing.assert_array_equal(restyle(x[i], y[i], np.random.default_rng(0)), x[i])


def test_the_slash_crosses_the_zeros_centre(digits):
    for x in first(digits, 0):
        rows, cols = np.nonzero(x > 0.3)
        cy, cx = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
        new = added(x, slash_zero(x, np.random.default_rng(1)))
        r, c = np.nonzero(new)
        assert np.min(np.hypot(r - cy, c - cx)) <= 1.5  # through the middle, where a zero has no ink
        assert new[int(rows.max()) - 3:, :int(cx)].any() and new[:int(rows.min()) + 4, int(cx):].any()  # below-left to above-right


def test_the_crossbar_crosses_the_sevens_stem(digits):
    for x in first(digits, 7):
        rows, _ = np.nonzero(x > 0.3)
        top, bottom = rows.min(), rows.max()
        new = added(x, cross_seven(x, np.random.default_rng(2)))
        r, c = np.nonzero(new)
        assert top + 0.35 * (bottom - top) <= r.mean() <= top + 0.75 * (bottom - top)  # near half height
        assert np.ptp(c) > np.ptp(r)  # across, not along, the stem
        stem = np.nonzero(x[int(r.mean() + 0.5)] > 0.3)[0]
        assert c.min() < stem.mean() < c.max()  # on both sides of the stem


def test_the_flag_starts_at_the_top_of_the_one(digits):
    for x in first(digits, 1):
        rows, cols = np.nonzero(x > 0.3)
        new = added(x, flag_one(x, np.random.default_rng(3)))
        r, c = np.nonzero(new)
        flag = r < rows.min() + 0.5 * (rows.max() - rows.min())
        assert flag.any()
        assert c[flag].min() < cols[rows <= rows.min() + 1].mean()  # it reaches out to the left of the top


def closed_four(left_top: int = 5) -> np.ndarray:
    """A printed four: a stem, an arm from the stem's top down to the left, a crossbar."""
    from core.styles import stroke

    return np.maximum.reduce([stroke((4, 17), (23, 17), 2.5), stroke((left_top, 16), (17, 7), 2.5),
                              stroke((17, 7), (17, 21), 2.5)])


def test_opening_the_four_cuts_the_arm_from_the_stem_and_nothing_else(digits):
    four = closed_four()
    out = open_four(four, np.random.default_rng(4))
    gone = added(out, four)
    r, c = np.nonzero(gone)
    assert len(r) >= 3
    assert r.max() <= 4 + 0.35 * 19 and c.max() < 17  # only the top of the arm, left of the stem
    np.testing.assert_array_equal(out[:, 16:], four[:, 16:])  # the stem is whole
    np.testing.assert_array_equal(out[12:], four[12:])  # the crossbar and the lower arm too
    # open: in the top rows of the arm's old place, no ink joins it to the stem any more
    top_rows = out[5:8]
    assert not (top_rows[:, 10:15] > 0.3).any()
    for x in first(digits, 4):  # real fours: the stem's top stays, only the top left loses ink
        rows, _ = np.nonzero(x > 0.3)
        o = open_four(x, np.random.default_rng(6))
        r, c = np.nonzero(added(o, x))
        assert (r <= rows.min() + 0.31 * (rows.max() - rows.min()) + 1).all()
        assert (o[rows.min()] > 0.3).any()


def test_closing_the_four_draws_the_diagonal_and_keeps_stem_and_bar():
    """An open four (left arm, stem, a bar past the stem) becomes a printed one: a diagonal from the bar's
    left end to the stem's top; the stem and everything below the bar stay as they were."""
    from core.styles import stroke

    four = np.maximum.reduce([stroke((4, 17), (23, 17), 2.5), stroke((5, 8), (16, 8), 2.5),
                              stroke((16, 8), (16, 21), 2.5)])
    out = close_four(four, np.random.default_rng(0))
    np.testing.assert_array_equal(out[18:], four[18:])  # below the bar: the stem alone, untouched
    assert (out[4:23, 17] > 0.3).all()  # the stem is whole
    assert (out[16, 8:21] > 0.3).all()  # and the bar
    assert not (out[5:11, 7:10] > 0.3).any()  # the old arm's top is gone
    mid = out[10, 9:17]  # halfway up, the diagonal crosses between the bar's left end and the stem
    assert (mid > 0.3).any() and not (out[10, :7] > 0.3).any()
    mirrored = four[:, ::-1].copy()  # no arm left of the stem: nothing to close, nothing changed
    np.testing.assert_array_equal(close_four(mirrored, np.random.default_rng(0)), mirrored)


def test_the_pool_styles_only_those_digits_and_training_uses_it(digits, monkeypatch):
    x, y = digits
    index, images = styled_pool(x, y, seed=0)
    assert set(np.unique(y[index])) == set(STYLES)
    assert images.shape == (len(index), 28, 28)
    import core.models.base as base
    from core.augment import Augment
    from core.data import Split
    from core.models import model_class
    from core.settings import with_training

    seen = []
    real = base.augment
    monkeypatch.setattr(base, "augment", lambda xs, rng, a=Augment(), labels=None: seen.append(xs) or real(xs, rng, a, labels=labels))
    model = model_class("numpy_mlp")(with_training(model_class("numpy_mlp").Settings(), epochs=1,
                                                   augmentation=Augment(styles=1.0)))
    model.fit(Split(x, y), Split(x[:100], y[:100]))
    shown = seen[0]
    np.testing.assert_array_equal(shown[index], images)  # with styles=1 every 0, 1 and 7 is shown styled
    others = np.setdiff1d(np.arange(len(x)), index)
    np.testing.assert_array_equal(shown[others], x[others])


def test_style_digits_choose_which_digits_are_restyled(digits, monkeypatch):
    """``Augment.style_digits`` "07": zeros slashed and sevens crossed, ones left as MNIST has them."""
    x, y = digits
    index, images = styled_pool(x, y, seed=0, digits="07")
    assert set(np.unique(y[index])) == {0, 7} and len(images) == len(index)
    np.testing.assert_array_equal(styled_pool(x, y, seed=0, digits="07")[1], images)  # seeded
    assert len(styled_pool(x, y, seed=0, digits="")[0]) == 0
    for bad in ("4", "01x"):
        with pytest.raises(ValueError, match="the digits with a style are 017"):
            styled_pool(x, y, seed=0, digits=bad)
    import core.models.base as base
    from core.augment import Augment
    from core.data import Split
    from core.models import model_class
    from core.settings import from_dict, to_dict, with_training

    seen, real = [], base.augment
    monkeypatch.setattr(base, "augment", lambda xs, rng, a=Augment(), labels=None: seen.append(xs) or real(xs, rng, a, labels=labels))
    settings = with_training(model_class("numpy_mlp").Settings(), epochs=1,
                             augmentation=Augment(styles=1.0, style_digits="07"))
    model_class("numpy_mlp")(settings).fit(Split(x, y), Split(x[:100], y[:100]))
    np.testing.assert_array_equal(seen[0][index], images)
    np.testing.assert_array_equal(seen[0][y == 1], x[y == 1])  # no one flagged
    saved = to_dict(settings)
    assert from_dict(type(settings), saved) == settings
    del saved["train"]["augmentation"]["style_digits"]  # settings saved before the field: all three styled
    assert from_dict(type(settings), saved).train.augmentation.style_digits == "017"
