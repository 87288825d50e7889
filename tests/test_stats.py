"""core.stats against slow, obvious references (loops, math.comb, fractions.Fraction) and published or
hand-worked values."""

from __future__ import annotations

import math

import pytest

from core import stats

# ---------------------------------------------------------------------------------------------- wilson


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [  # Newcombe (1998), Statistics in Medicine 17:857-872, table I, method 3 (Wilson score, no correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe(k, n, lo, hi):
    got = stats.wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)


def test_wilson_by_hand():
    # 0 of 1: centre and half-width are both (z^2 / 2) / (1 + z^2), so the interval is [0, z^2 / (1 + z^2)]
    z = stats.Z95
    assert stats.wilson(0, 1) == (0.0, pytest.approx(z * z / (1 + z * z)))
    # k/n = 1/2 is centred on 1/2 exactly
    lo, hi = stats.wilson(50, 100)
    assert (lo + hi) / 2 == pytest.approx(0.5)
    assert hi - lo == pytest.approx(2 * z / (1 + z * z / 100) * math.sqrt(0.25 / 100 + z * z / 40000))


@pytest.mark.parametrize("n", [1, 7, 9, 10, 13, 100, 263, 10_000])
def test_wilson_ends_are_exact_and_symmetric(n):
    assert stats.wilson(0, n)[0] == 0.0
    assert stats.wilson(n, n)[1] == 1.0
    for k in {0, 1, n // 3, n // 2, n}:
        lo, hi = stats.wilson(k, n)
        mirror_lo, mirror_hi = stats.wilson(n - k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0
        assert (lo, hi) == pytest.approx((1 - mirror_hi, 1 - mirror_lo), abs=1e-12)


@pytest.mark.parametrize(("k", "n"), [(0, 0), (-1, 10), (11, 10)])
def test_wilson_refuses_impossible_counts(k, n):
    with pytest.raises(ValueError):
        stats.wilson(k, n)
