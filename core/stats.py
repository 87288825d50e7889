"""The statistics of a fair comparison: confidence intervals, paired significance tests, seed
spread, per-class reports and calibration. Pure NumPy and the standard library; every function
here is checked in ``tests/test_stats.py`` against a slow, obvious reference implementation.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion of ``k`` successes in ``n`` trials.

    Unlike the textbook p +- z*sqrt(p(1-p)/n), it stays inside [0, 1] and keeps its coverage
    near 0 and 1, where test accuracies live.
    """
    if n <= 0:
        raise ValueError("an interval needs at least one trial")
    if not 0 <= k <= n:
        raise ValueError(f"{k} successes out of {n} is impossible")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the ends, where rounding would leave 3e-17
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi
