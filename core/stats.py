"""The statistics of a fair comparison: confidence intervals, paired significance tests, seed
spread, per-class reports and calibration. Pure NumPy and the standard library; every function
here is checked in ``tests/test_stats.py`` against a slow, obvious reference implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain, combinations

import numpy as np

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


# ------------------------------------------------------------------------ two models, one test set


@dataclass(frozen=True)
class McNemar:
    """The paired comparison of two models on the same test items: only the items they disagree on count."""

    only_a: int  # test items model A gets right and model B gets wrong
    only_b: int  # the reverse
    p: float  # exact two-sided p-value: binomial test of only_a vs only_b with p = 1/2; 1.0 when both are 0


def mcnemar(correct_a, correct_b) -> McNemar:
    """McNemar's exact test from two boolean arrays, one entry per test item, in the same order.

    Items both models get right (or both wrong) say nothing about which is better, so only the
    disagreements go into the test.
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired results need the same test items: shapes {a.shape} and {b.shape}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    return McNemar(only_a, only_b, mcnemar_p(only_a, only_b))


def mcnemar_p(only_a: int, only_b: int) -> float:
    """The exact two-sided p = min(1, 2 P(X <= min(b, c))) for X ~ Binomial(b + c, 1/2).

    The tail is summed from its largest term P(X = k) down, each term the one above times
    i / (n - i + 1), stopping once the terms no longer change the sum. P(X = k) = C(n, k) / 2^n is
    kept as an exact integer and a power of two until the very end, so nothing overflows or
    underflows on the way, even for n in the hundreds of thousands.
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(f"counts must be non-negative, not {only_a} and {only_b}")
    n, k = int(only_a) + int(only_b), int(min(only_a, only_b))
    tail, term = 1.0, 1.0  # in units of P(X = k)
    for i in range(k, 0, -1):
        term *= i / (n - i + 1)
        tail += term
        if term < 1e-17 * tail:
            break
    top = math.comb(n, k)  # P(X = k) = top / 2^n = (top / 2^bits) * 2^(bits - n)
    bits = top.bit_length()
    return min(1.0, math.ldexp(2 * tail * (top / (1 << bits)), bits - n))


# ------------------------------------------------------------------------------ several training seeds


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0.0 for a single value) of per-seed results."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("a mean needs at least one value")
    return float(x.mean()), (float(x.std(ddof=1)) if x.size > 1 else 0.0)


EXACT_LIMIT = 200_000  # relabelings enumerated one by one; above this, a seeded Monte Carlo sample
DRAWS = 20_000


@dataclass(frozen=True)
class SeedComparison:
    """Two models trained from several seeds each: is one ahead whatever the seed?"""

    mean_a: float
    mean_b: float
    share_a_ahead: float  # share of all (seed of A, seed of B) pairs in which A is more accurate (ties count half)
    p: float  # two-sided permutation test on the difference of mean per-seed accuracies
    n_a: int
    n_b: int


def compare_seeds(acc_a, acc_b) -> SeedComparison:
    """Compare per-seed test accuracies of two models (independent runs, not paired)."""
    a, b = _seed_values(acc_a), _seed_values(acc_b)
    ahead = (a[:, None] > b[None, :]).mean() + 0.5 * (a[:, None] == b[None, :]).mean()
    return SeedComparison(float(a.mean()), float(b.mean()), float(ahead), permutation_p(a, b), a.size, b.size)


def permutation_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of the difference of means: the share of relabelings of the pooled values into
    groups of len(a) and len(b) whose difference is at least as large as the one observed.

    Exact over all C(n_a + n_b, n_a) relabelings up to EXACT_LIMIT of them; above that, DRAWS random
    relabelings from a fixed seed, counting the observed one too so that p is never 0.
    """
    x = np.concatenate([a, b])
    n_a, total = a.size, x.sum()
    if math.comb(x.size, n_a) <= EXACT_LIMIT:
        count = math.comb(x.size, n_a)
        picks = np.fromiter(chain.from_iterable(combinations(range(x.size), n_a)), np.int64, count * n_a)
        sums = x[picks.reshape(count, n_a)].sum(1)  # the first relabeling is the observed one
        gaps = np.abs(sums / n_a - (total - sums) / b.size)
        return float(np.mean(gaps >= gaps[0] - 1e-12))
    observed = abs(a.mean() - b.mean())
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(DRAWS):
        sum_a = rng.permutation(x)[:n_a].sum()
        hits += abs(sum_a / n_a - (total - sum_a) / b.size) >= observed - 1e-12
    return float((hits + 1) / (DRAWS + 1))


def _seed_values(acc) -> np.ndarray:
    x = np.asarray(acc, dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("each model needs at least one finite per-seed accuracy")
    return x


# ----------------------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Verdict:
    winner: str | None  # "a", "b" or None when the evidence does not support ranking them
    text: str  # one or two sentences a student understands


def verdict(title_a: str, title_b: str, test: McNemar, seeds: SeedComparison | None = None, alpha: float = 0.05) -> Verdict:
    """Which model is more accurate, if the evidence says so, in words.

    A winner needs McNemar's p < alpha on the committed models and, when there are at least two
    seeds per model, a seed comparison in the same direction with p < alpha too: otherwise the
    ranking could flip with another training seed.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
    if test.only_a == test.only_b == 0:
        return Verdict(None, f"{title_a} and {title_b} get exactly the same test digits right, so no test can tell them apart (p = 1).")
    if test.p >= alpha:
        return Verdict(None, (
            f"{title_a} and {title_b} are within noise of each other ({format_p(test.p)}): on the same test digits "
            f"{title_a} gets {test.only_a:,} right that {title_b} gets wrong, and {test.only_b:,} the other way round, "
            f"a gap that chance alone often produces. This ranking could flip with another seed."))
    lead = "a" if test.only_a > test.only_b else "b"
    win, lose = (title_a, title_b) if lead == "a" else (title_b, title_a)
    right, wrong = max(test.only_a, test.only_b), min(test.only_a, test.only_b)
    if seeds is None or min(seeds.n_a, seeds.n_b) < 2:
        chance = "would almost never happen" if test.p < 0.001 else "would rarely happen"
        return Verdict(lead, (
            f"{win} is more accurate than {lose}: on the same test digits it gets {right:,} right that {lose} gets wrong, "
            f"and {wrong:,} the other way round; a difference this large {chance} by chance ({format_p(test.p)})."))
    share = seeds.share_a_ahead if lead == "a" else 1 - seeds.share_a_ahead
    runs = f"{seeds.n_a} seeds each" if seeds.n_a == seeds.n_b else f"{seeds.n_a} and {seeds.n_b} seeds"
    gap = seeds.mean_a - seeds.mean_b if lead == "a" else seeds.mean_b - seeds.mean_a
    if gap > 0 and seeds.p < alpha:
        return Verdict(lead, (
            f"{win} is more accurate than {lose}: on the same test digits it gets {right:,} right that {lose} gets wrong, "
            f"and {wrong:,} the other way round ({format_p(test.p)}), and over {runs} it stays ahead "
            f"(in {share:.0%} of seed pairs, {format_p(seeds.p)})."))
    committed = (f"The committed models differ ({format_p(test.p)}: {win} gets {right:,} test digits right that {lose} gets wrong, "
                 f"and {wrong:,} the other way round)")
    if gap < 0 and seeds.p < alpha:
        return Verdict(None, (
            f"{committed}, but over {runs} it is {lose} that comes out ahead (in {1 - share:.0%} of seed pairs, "
            f"{format_p(seeds.p)}): which model leads depends on the seed."))
    if gap > 0 and share == 1:  # as consistent as seeds can be, but too few of them: 3 + 3 cannot reach p < 0.1
        return Verdict(None, (
            f"{committed}, and over {runs} {win} is ahead in every seed pair, but so few seeds cannot rule out chance "
            f"({format_p(seeds.p)}): more seeds would settle it."))
    return Verdict(None, (
        f"{committed}, but over {runs} the lead is not consistent ({win} ahead in {share:.0%} of seed pairs, "
        f"{format_p(seeds.p)}): this ranking could flip with another seed."))


def format_p(p: float) -> str:
    """"p < 0.001" below 0.001, else p to 2 significant digits ("p = 0.012")."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"

