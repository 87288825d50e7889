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


# ----------------------------------------------------------------------------------- per-class report


def classification_report(labels, pred, classes: int = 10) -> dict:
    """Precision, recall, F1 and support per class (0 where a ratio is 0/0), macro F1 and accuracy.

    Precision asks "when the model says 7, how often is it a 7?", recall "of the 7s, how many does
    it find?"; F1 is their harmonic mean.
    """
    y, p = np.asarray(labels, dtype=np.int64).ravel(), np.asarray(pred, dtype=np.int64).ravel()
    if y.size == 0 or y.shape != p.shape:
        raise ValueError(f"labels and predictions must be non-empty and the same length, not {y.size} and {p.size}")
    if min(y.min(), p.min()) < 0 or max(y.max(), p.max()) >= classes:
        raise ValueError(f"classes must be 0 to {classes - 1}")
    cm = np.bincount(y * classes + p, minlength=classes * classes).reshape(classes, classes)
    hits, support, predicted = np.diag(cm).astype(np.float64), cm.sum(1), cm.sum(0)
    precision, recall = _ratio(hits, predicted), _ratio(hits, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64),
            "macro_f1": float(f1.mean()), "accuracy": float(hits.sum() / y.size)}


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """top / bottom, with 0 where bottom is 0."""
    bottom = np.asarray(bottom, dtype=np.float64)
    return np.divide(top, bottom, out=np.zeros_like(bottom), where=bottom > 0)


# ---------------------------------------------------------------------------------------- calibration

TINY = float(np.finfo(np.float32).tiny)  # probabilities are clipped here before a log


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram: how often the model is right when it says it is X% sure."""

    edges: np.ndarray  # (bins + 1,) equal-width confidence bins on [0, 1]
    count: np.ndarray  # (bins,) int
    confidence: np.ndarray  # (bins,) mean top-class confidence in the bin (NaN where empty)
    accuracy: np.ndarray  # (bins,) share correct in the bin (NaN where empty)
    ece: float  # expected calibration error: sum over bins of count / n * |accuracy - confidence|
    mean_conf_right: float  # mean top-class confidence on correct answers (NaN if none)
    mean_conf_wrong: float  # the same on wrong answers (NaN if none)


def reliability(probs, labels, bins: int = 15) -> Reliability:
    """Bin the top-class confidence into equal-width bins (lo, hi] (the first also takes 0) and
    compare each bin's mean confidence with its share of correct answers."""
    probs, labels = _probs_labels(probs, labels)
    if bins < 1:
        raise ValueError(f"at least one bin, not {bins}")
    conf, correct = probs.max(1), probs.argmax(1) == labels
    edges = np.arange(bins + 1) / bins  # i / bins, so that an edge is the very float 0.6 is, not 0.6000000000000001
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, conf, bins) / count
        accuracy = np.bincount(which, correct, bins) / count
    full = count > 0
    ece = float(np.sum(count[full] / labels.size * np.abs(accuracy[full] - confidence[full])))
    return Reliability(edges, count, confidence, accuracy, ece, _mean_or_nan(conf[correct]), _mean_or_nan(conf[~correct]))


def ece(probs, labels, bins: int = 15) -> float:
    """Expected calibration error: the gap between confidence and accuracy, averaged over the test set."""
    return reliability(probs, labels, bins).ece


def temper(probs, temperature: float) -> np.ndarray:
    """Temperature scaling: softmax(log(p) / T) row by row, as float32 of the same shape.

    T > 1 softens over-confident probabilities and T < 1 sharpens them; the order of the classes stays the same.
    """
    return _temper64(np.asarray(probs, dtype=np.float64), temperature).astype(np.float32)


def nll(probs, labels) -> float:
    """Mean negative log-likelihood of the true class (probabilities clipped at TINY)."""
    probs, labels = _probs_labels(probs, labels)
    return _nll64(probs, labels)


def fit_temperature(probs, labels, lo: float = 0.05, hi: float = 20.0) -> float:
    """The T in [lo, hi] that minimises nll(temper(probs, T), labels).

    A golden-section search on log T to about 1e-4 relative: the NLL is convex in 1/T, so it has
    one minimum, and the search is deterministic.
    """
    if not 0 < lo < hi or not math.isfinite(hi):
        raise ValueError(f"need 0 < lo < hi, not {lo} and {hi}")
    probs, labels = _probs_labels(probs, labels)
    loss = lambda u: _nll64(_temper64(probs, math.exp(u)), labels)
    golden = (math.sqrt(5) - 1) / 2
    a, b = math.log(lo), math.log(hi)
    c, d = b - golden * (b - a), a + golden * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > 1e-4:  # the answer is the midpoint, within 5e-5 of the minimum in log T
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - golden * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + golden * (b - a)
            fd = loss(d)
    return float(min(hi, max(lo, math.exp((a + b) / 2))))


def _temper64(probs: np.ndarray, temperature: float) -> np.ndarray:
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"the temperature must be a positive number, not {temperature}")
    z = np.log(np.maximum(probs, TINY)) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _nll64(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(probs[np.arange(labels.size), labels], TINY))))


def _probs_labels(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if probs.ndim != 2 or probs.shape[0] != labels.size or labels.size == 0:
        raise ValueError(f"need probabilities (n, classes) and n labels, n > 0, not {probs.shape} and {labels.size}")
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ValueError(f"labels must be 0 to {probs.shape[1] - 1}")
    return probs, labels


def _mean_or_nan(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else math.nan
