"""core.stats against slow, obvious references (loops, math.comb, fractions.Fraction) and published or
hand-worked values."""

from __future__ import annotations

import itertools
import math
import statistics
from fractions import Fraction

import numpy as np
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


# --------------------------------------------------------------------------------------------- McNemar


def slow_mcnemar_p(b: int, c: int) -> Fraction:
    """min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2), as an exact fraction."""
    n = b + c
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(Fraction(1), Fraction(2 * tail, 2**n))


def test_mcnemar_p_by_hand():
    # 10 vs 2: P(X <= 2) for X ~ Bin(12, 1/2) is (1 + 12 + 66) / 4096; two-sided doubles it
    assert stats.mcnemar_p(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096, rel=1e-14)
    assert stats.mcnemar_p(2, 10) == stats.mcnemar_p(10, 2)
    assert stats.mcnemar_p(0, 5) == pytest.approx(2 / 32, rel=1e-14)
    assert stats.mcnemar_p(0, 6) == pytest.approx(2 / 64, rel=1e-14)
    assert stats.mcnemar_p(0, 0) == 1.0  # no disagreement: no evidence
    assert stats.mcnemar_p(0, 1) == 1.0
    assert stats.mcnemar_p(7, 7) == 1.0


def test_mcnemar_p_matches_exact_fractions_for_small_counts():
    for b in range(31):
        for c in range(31):
            assert stats.mcnemar_p(b, c) == pytest.approx(float(slow_mcnemar_p(b, c)), rel=1e-12, abs=0), (b, c)


@pytest.mark.parametrize(("b", "c"), [(90, 130), (400, 520), (1_000, 1_100), (25, 3_000), (1_490, 1_510)])
def test_mcnemar_p_matches_exact_fractions_for_medium_counts(b, c):
    assert stats.mcnemar_p(b, c) == pytest.approx(float(slow_mcnemar_p(b, c)), rel=1e-12, abs=0)


def test_mcnemar_p_neither_overflows_nor_underflows_for_100_000_disagreements():
    b, c = 49_000, 51_000  # z = 6.3: p about 3e-10, from terms like C(100000, 49000) / 2^100000
    n, term, tail = b + c, 1, 1
    for i in range(b):  # exact integers; C(n, i + 1) from C(n, i)
        term = term * (n - i) // (i + 1)
        tail += term
    assert stats.mcnemar_p(b, c) == pytest.approx(float(Fraction(2 * tail, 2**n)), rel=1e-12, abs=0)
    assert stats.mcnemar_p(0, 1_000) == 2.0**-999  # exactly 2 / 2^1000, far below 2^-53
    assert stats.mcnemar_p(50_000, 50_000) == 1.0
    assert stats.mcnemar_p(49_900, 50_100) == pytest.approx(math.erfc(99.5 / math.sqrt(2 * 25_000)), rel=0.01)  # normal approx.


def test_mcnemar_p_refuses_negative_counts():
    with pytest.raises(ValueError):
        stats.mcnemar_p(-1, 3)


def test_mcnemar_counts_disagreements_like_a_loop():
    rng = np.random.default_rng(1)
    a, b = rng.random(500) < 0.9, rng.random(500) < 0.85
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    test = stats.mcnemar(a, b)
    assert (test.only_a, test.only_b) == (only_a, only_b)
    assert test.p == stats.mcnemar_p(only_a, only_b)
    assert stats.mcnemar(list(a), list(b)) == test  # plain lists too


def test_mcnemar_of_identical_results_is_p_1():
    same = np.array([True, False, True])
    assert stats.mcnemar(same, same) == stats.McNemar(0, 0, 1.0)


def test_mcnemar_refuses_unpaired_lengths():
    with pytest.raises(ValueError):
        stats.mcnemar(np.ones(10, bool), np.ones(9, bool))


# ---------------------------------------------------------------------------------------------- seeds


def test_mean_sd_against_statistics():
    values = [0.981, 0.9843, 0.979, 0.9862, 0.9855]
    assert stats.mean_sd(values) == pytest.approx((statistics.mean(values), statistics.stdev(values)), rel=1e-12)
    assert stats.mean_sd([1, 2, 3, 4]) == pytest.approx((2.5, math.sqrt(5 / 3)))
    assert stats.mean_sd(np.array([0.98])) == (0.98, 0.0)
    with pytest.raises(ValueError):
        stats.mean_sd([])


def slow_compare(a: list[float], b: list[float]) -> tuple[Fraction, Fraction]:
    """(share of seed pairs with A ahead, ties half; exact permutation p), in exact fractions."""
    ahead = sum(Fraction(1) if x > y else Fraction(1, 2) if x == y else Fraction(0) for x in a for y in b)
    pooled = [Fraction(v) for v in a + b]
    gap = lambda group_a, group_b: abs(sum(group_a) / len(group_a) - sum(group_b) / len(group_b))
    observed = gap(pooled[: len(a)], pooled[len(a):])
    as_large = total = 0
    for pick in itertools.combinations(range(len(pooled)), len(a)):
        group_a = [pooled[i] for i in pick]
        group_b = [pooled[i] for i in range(len(pooled)) if i not in pick]
        as_large += gap(group_a, group_b) >= observed
        total += 1
    return ahead / (len(a) * len(b)), Fraction(as_large, total)


def test_compare_seeds_by_hand():
    # A's two seeds beat both of B's. Of the 6 ways to split {.99, .98, .97, .96} in two pairs, only
    # the observed split and its mirror image have a gap of means as large as 0.02: p = 2/6.
    got = stats.compare_seeds([0.99, 0.98], [0.97, 0.96])
    assert got.share_a_ahead == 1.0
    assert got.p == pytest.approx(1 / 3)
    assert (got.mean_a, got.mean_b, got.n_a, got.n_b) == (pytest.approx(0.985), pytest.approx(0.965), 2, 2)
    # ties count half: 1 vs 2, 1 vs 3, 2 vs 2 (half), 2 vs 3 -> 0.5 / 4
    assert stats.compare_seeds([1, 2], [2, 3]).share_a_ahead == 0.125
    assert stats.compare_seeds([0.98], [0.97]).p == 1.0  # one seed each: 2 relabelings, both as large


@pytest.mark.parametrize("seed", range(6))
def test_compare_seeds_matches_exact_enumeration(seed):
    rng = np.random.default_rng(seed)
    n_a, n_b = int(rng.integers(1, 6)), int(rng.integers(2, 6))
    # accuracies as counts out of 10,000 test digits, as in the app, so that ties happen
    a = list(rng.integers(9_780, 9_800, n_a) / 10_000)
    b = list(rng.integers(9_775, 9_795, n_b) / 10_000)
    share, p = slow_compare(a, b)
    got = stats.compare_seeds(a, b)
    assert got.share_a_ahead == pytest.approx(float(share), abs=1e-15)
    assert got.p == pytest.approx(float(p), abs=1e-15)
    assert (got.mean_a, got.mean_b) == (pytest.approx(statistics.mean(a)), pytest.approx(statistics.mean(b)))


def test_compare_seeds_exact_up_to_the_limit():
    # C(18, 9) = 48,620 relabelings: still exact. A's 9 seeds are all ahead: p = 2 / 48,620.
    got = stats.compare_seeds(np.linspace(0.99, 0.991, 9), np.linspace(0.98, 0.981, 9))
    assert got.p == pytest.approx(2 / math.comb(18, 9))
    assert got.share_a_ahead == 1.0


def test_compare_seeds_falls_back_to_a_seeded_monte_carlo(monkeypatch):
    # C(24, 12) = 2,704,156 > 200,000 relabelings: 20,000 random ones, the observed counted too
    a, b = np.linspace(0.99, 0.991, 12), np.linspace(0.98, 0.981, 12)
    assert stats.compare_seeds(a, b).p == pytest.approx(1 / 20_001)
    assert stats.compare_seeds(a, a).p == 1.0
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.985, 0.002, 13), rng.normal(0.984, 0.002, 12)
    first = stats.compare_seeds(a, b)
    assert stats.compare_seeds(a, b) == first  # deterministic
    assert 0.0 < first.p < 1.0
    # against the exact p on a small case, made to take the Monte Carlo path: 4 standard errors
    a, b = list(rng.normal(0.985, 0.002, 5)), list(rng.normal(0.984, 0.002, 6))
    exact = stats.compare_seeds(a, b).p
    assert exact == pytest.approx(float(slow_compare(a, b)[1]), abs=1e-15)
    monkeypatch.setattr(stats, "EXACT_LIMIT", 0)
    assert stats.compare_seeds(a, b).p == pytest.approx(exact, abs=4 * math.sqrt(0.25 / 20_000))


@pytest.mark.parametrize(("a", "b"), [([], [0.9]), ([0.9], []), ([0.9, math.nan], [0.9])])
def test_compare_seeds_refuses_empty_or_non_finite(a, b):
    with pytest.raises(ValueError):
        stats.compare_seeds(a, b)


# -------------------------------------------------------------------------------------------- verdict


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.2, "p = 0.2"), (0.012345, "p = 0.012"), (0.05, "p = 0.05"), (1.0, "p = 1"), (0.001, "p = 0.001"),
     (0.000999, "p < 0.001"), (0.0, "p < 0.001"), (0.2049, "p = 0.2"), (0.0456, "p = 0.046")],
)
def test_format_p(p, text):
    assert stats.format_p(p) == text


def seeds(mean_a: float, mean_b: float, share_a: float, p: float, n_a: int = 5, n_b: int = 5) -> stats.SeedComparison:
    return stats.SeedComparison(mean_a, mean_b, share_a, p, n_a, n_b)


BETTER = ("more accurate", "better", "stays ahead")


def ranks_none(v: stats.Verdict) -> bool:
    return v.winner is None and not any(word in v.text for word in BETTER)


def test_verdict_significant_single_run():
    v = stats.verdict("LeNet-5 CNN", "Keras network", stats.McNemar(120, 25, 1e-15))
    assert v.winner == "a"
    assert v.text == (
        "LeNet-5 CNN is more accurate than Keras network: on the same test digits it gets 120 right that Keras network "
        "gets wrong, and 25 the other way round; a difference this large would almost never happen by chance (p < 0.001).")


def test_verdict_significant_single_run_for_b_names_b_first():
    v = stats.verdict("NumPy network", "Keras network", stats.McNemar(1_040, 1_150, 0.02))
    assert v.winner == "b"
    assert v.text.startswith("Keras network is more accurate than NumPy network: on the same test digits it gets 1,150 right")
    assert "and 1,040 the other way round" in v.text
    assert "would rarely happen by chance (p = 0.02)" in v.text


def test_verdict_within_noise():
    v = stats.verdict("NumPy network", "Keras network", stats.McNemar(60, 75, 0.2))
    assert ranks_none(v)
    assert v.text.startswith("NumPy network and Keras network are within noise of each other (p = 0.2)")
    assert "this ranking could flip with another seed" in v.text.lower()
    assert "60" in v.text and "75" in v.text


def test_verdict_identical_answers():
    v = stats.verdict("A", "B", stats.McNemar(0, 0, 1.0))
    assert ranks_none(v)
    assert "exactly the same test digits right" in v.text


def test_verdict_respects_alpha():
    test = stats.McNemar(40, 20, 0.03)
    assert stats.verdict("A", "B", test).winner == "a"
    assert ranks_none(stats.verdict("A", "B", test, alpha=0.01))
    for alpha in (0, 1, -0.5):
        with pytest.raises(ValueError):
            stats.verdict("A", "B", test, alpha=alpha)


def test_verdict_seeds_agree():
    v = stats.verdict("LeNet-5 CNN", "Keras network", stats.McNemar(120, 25, 1e-15), seeds(0.994, 0.985, 1.0, 0.008))
    assert v.winner == "a"
    assert v.text.startswith("LeNet-5 CNN is more accurate than Keras network")
    assert "over 5 seeds each it stays ahead (in 100% of seed pairs, p = 0.008)" in v.text
    v = stats.verdict("A", "B", stats.McNemar(10, 50, 1e-6), seeds(0.97, 0.98, 0.1, 0.02, n_a=3, n_b=4))
    assert v.winner == "b"
    assert "over 3 and 4 seeds it stays ahead (in 90% of seed pairs, p = 0.02)" in v.text


def test_verdict_seeds_not_consistent():
    v = stats.verdict("NumPy network", "Keras network", stats.McNemar(95, 60, 0.006), seeds(0.982, 0.981, 0.6, 0.3))
    assert ranks_none(v)
    assert v.text.startswith("The committed models differ (p = 0.006")
    assert "over 5 seeds each the lead is not consistent (NumPy network ahead in 60% of seed pairs, p = 0.3)" in v.text
    assert v.text.endswith("this ranking could flip with another seed.")


def test_verdict_seeds_always_ahead_but_too_few():
    # 3 seeds each: even A ahead in all 9 seed pairs gives only p = 2 / C(6, 3) = 0.1
    v = stats.verdict("A", "B", stats.McNemar(95, 60, 0.006), seeds(0.985, 0.981, 1.0, 0.1, n_a=3, n_b=3))
    assert ranks_none(v)
    assert "over 3 seeds each A is ahead in every seed pair, but so few seeds cannot rule out chance (p = 0.1)" in v.text


def test_verdict_seeds_point_the_other_way_but_not_significantly():
    v = stats.verdict("A", "B", stats.McNemar(95, 60, 0.006), seeds(0.980, 0.981, 0.4, 0.5))
    assert ranks_none(v)
    assert "the lead is not consistent (A ahead in 40% of seed pairs, p = 0.5)" in v.text


def test_verdict_seeds_significantly_the_other_way():
    v = stats.verdict("A", "B", stats.McNemar(95, 60, 0.006), seeds(0.975, 0.985, 0.0, 0.004))
    assert ranks_none(v)
    assert "it is B that comes out ahead (in 100% of seed pairs, p = 0.004)" in v.text


def test_verdict_seeds_with_equal_means_are_not_consistent():
    v = stats.verdict("A", "B", stats.McNemar(95, 60, 0.006), seeds(0.98, 0.98, 0.5, 1.0))
    assert ranks_none(v)
    assert "not consistent" in v.text


def test_verdict_ignores_fewer_than_two_seeds_per_model():
    test = stats.McNemar(120, 25, 1e-15)
    alone = stats.verdict("A", "B", test)
    assert stats.verdict("A", "B", test, seeds(0.98, 0.99, 0.0, 1.0, n_a=1, n_b=5)) == alone
    assert stats.verdict("A", "B", test, seeds(0.98, 0.99, 0.0, 1.0, n_a=5, n_b=1)) == alone
    assert alone.winner == "a"


def test_verdict_end_to_end():
    rng = np.random.default_rng(3)
    truth = rng.random(10_000)
    a, b = truth < 0.995, truth < 0.985  # A right wherever B is, and on 1% more
    test = stats.mcnemar(a, b)
    assert test.only_b == 0 and test.p < 1e-20
    v = stats.verdict("A", "B", test, stats.compare_seeds([0.995, 0.994, 0.996, 0.993], [0.985, 0.984, 0.986, 0.987]))
    assert v.winner == "a"  # 4 seeds each, all of A's ahead: p = 2 / C(8, 4) = 0.029
    v = stats.verdict("A", "B", test, stats.compare_seeds([0.995, 0.994, 0.996], [0.985, 0.984, 0.986]))
    assert ranks_none(v)  # 3 seeds each can never reach p < 0.05


# ----------------------------------------------------------------------------------- per-class report


def slow_report(labels, pred, classes: int) -> dict:
    rows = {"precision": [], "recall": [], "f1": [], "support": []}
    for c in range(classes):
        tp = sum(1 for y, p in zip(labels, pred) if y == c and p == c)
        said = sum(1 for p in pred if p == c)
        support = sum(1 for y in labels if y == c)
        precision = tp / said if said else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        for key, value in zip(rows, (precision, recall, f1, support)):
            rows[key].append(value)
    rows["macro_f1"] = sum(rows["f1"]) / classes
    rows["accuracy"] = sum(1 for y, p in zip(labels, pred) if y == p) / len(labels)
    return rows


def test_classification_report_by_hand():
    # true 0 0 0 1 1 2, said 0 0 1 1 2 2:
    # 0: precision 2/2, recall 2/3, F1 0.8; 1: 1/2, 1/2, 0.5; 2: 1/2, 1/1, 2/3
    r = stats.classification_report([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], classes=3)
    assert r["precision"] == pytest.approx([1, 0.5, 0.5])
    assert r["recall"] == pytest.approx([2 / 3, 0.5, 1])
    assert r["f1"] == pytest.approx([0.8, 0.5, 2 / 3])
    assert list(r["support"]) == [3, 2, 1]
    assert r["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert r["accuracy"] == pytest.approx(4 / 6)


def test_classification_report_matches_loops_with_missing_classes():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 9, 400)  # digit 9 never occurs...
    pred = np.where(rng.random(400) < 0.7, labels, rng.integers(0, 10, 400))
    pred[pred == 3] = 4  # ...and 3 is never said
    got, want = stats.classification_report(labels, pred), slow_report(list(labels), list(pred), 10)
    for key in ("precision", "recall", "f1", "support"):
        assert got[key].shape == (10,)
        assert got[key] == pytest.approx(want[key], abs=1e-15), key
    assert got["precision"].dtype == got["recall"].dtype == got["f1"].dtype == np.float64
    assert got["support"].dtype.kind == "i"
    assert got["precision"][3] == got["f1"][3] == 0.0 and got["recall"][9] == 0.0
    assert got["macro_f1"] == pytest.approx(want["macro_f1"])
    assert got["accuracy"] == pytest.approx(want["accuracy"])
    assert isinstance(got["macro_f1"], float) and isinstance(got["accuracy"], float)


@pytest.mark.parametrize(("labels", "pred"), [([], []), ([1, 2], [1]), ([10], [1]), ([-1], [1])])
def test_classification_report_refuses_bad_input(labels, pred):
    with pytest.raises(ValueError):
        stats.classification_report(labels, pred)


# ---------------------------------------------------------------------------------------- calibration


def rows_with_confidence(conf, top, classes: int = 10) -> np.ndarray:
    """One probability row per confidence: conf on class `top`, the rest spread evenly."""
    conf = np.asarray(conf, dtype=np.float64)
    probs = np.repeat(((1 - conf) / (classes - 1))[:, None], classes, axis=1)
    probs[np.arange(conf.size), top] = conf
    return probs


def slow_reliability(probs, labels, edges):
    bins = len(edges) - 1
    count, confidence, accuracy = [0] * bins, [math.nan] * bins, [math.nan] * bins
    members = [[] for _ in range(bins)]
    for row, label in zip(probs, labels):
        conf = max(row)
        top = list(row).index(conf)
        for j in range(bins):
            if edges[j] < conf <= edges[j + 1] or (j == 0 and conf == 0):
                members[j].append((float(conf), top == label))
    for j, inside in enumerate(members):
        count[j] = len(inside)
        if inside:
            confidence[j] = sum(c for c, _ in inside) / len(inside)
            accuracy[j] = sum(ok for _, ok in inside) / len(inside)
    ece = sum(count[j] / len(labels) * abs(accuracy[j] - confidence[j]) for j in range(bins) if count[j])
    return count, confidence, accuracy, ece


@pytest.mark.parametrize("bins", [1, 5, 15])
def test_reliability_matches_loops(bins):
    rng = np.random.default_rng(bins)
    probs = rng.dirichlet(np.full(10, 0.3), 600).astype(np.float32)
    probs[:40] = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 40)]  # confidence exactly 1
    probs[40:60] = rows_with_confidence(rng.choice([0.2, 0.4, 0.6, 0.8], 20), 0)  # exactly on edges
    labels = np.where(rng.random(600) < 0.8, probs.argmax(1), rng.integers(0, 10, 600))
    r = stats.reliability(probs, labels, bins)
    assert r.edges == pytest.approx(np.linspace(0, 1, bins + 1), abs=1e-15)
    count, confidence, accuracy, ece = slow_reliability(probs, labels, r.edges)
    assert list(r.count) == count and r.count.dtype.kind == "i"
    assert r.confidence == pytest.approx(confidence, nan_ok=True)
    assert r.accuracy == pytest.approx(accuracy, nan_ok=True)
    assert r.ece == pytest.approx(ece)
    assert stats.ece(probs, labels, bins) == r.ece
    right = probs.argmax(1) == labels
    assert r.mean_conf_right == pytest.approx(probs.max(1)[right].mean())
    assert r.mean_conf_wrong == pytest.approx(probs.max(1)[~right].mean())


def test_reliability_bins_are_open_below_and_closed_above():
    r = stats.reliability(rows_with_confidence([0.2, 0.4, 0.6, 0.8, 1.0, 0.21], 0), [0] * 6, bins=5)
    assert list(r.count) == [1, 2, 1, 1, 1]  # 0.2 | 0.4, 0.21 | 0.6 | 0.8 | 1.0
    assert np.isnan(r.mean_conf_wrong)  # all right


def test_ece_of_a_perfectly_calibrated_model_is_0():
    # 10 answers at each confidence 0.2, 0.4, ..., 1.0, of which exactly that share is right
    conf = np.repeat([0.2, 0.4, 0.6, 0.8, 1.0], 10)
    right = np.concatenate([np.arange(10) < 10 * c for c in (0.2, 0.4, 0.6, 0.8, 1.0)])
    labels = np.where(right, 0, 1)
    r = stats.reliability(rows_with_confidence(conf, 0), labels, bins=5)
    assert r.ece == pytest.approx(0, abs=1e-12)
    assert r.accuracy == pytest.approx(r.confidence)
    assert r.mean_conf_right == pytest.approx((2 * 0.2 + 4 * 0.4 + 6 * 0.6 + 8 * 0.8 + 10 * 1.0) / 30)


def test_ece_of_an_over_confident_model_by_hand():
    # always 99% sure, right 70% of the time: ECE = |0.70 - 0.99| = 0.29, all in the top bin
    labels = np.where(np.arange(1000) < 700, 3, 5)
    r = stats.reliability(rows_with_confidence(np.full(1000, 0.99), 3), labels)
    assert r.ece == pytest.approx(0.29)
    assert list(r.count) == [0] * 14 + [1000]
    assert np.isnan(r.confidence[:14]).all() and np.isnan(r.accuracy[:14]).all()
    assert (r.mean_conf_right, r.mean_conf_wrong) == (pytest.approx(0.99), pytest.approx(0.99))


def test_reliability_refuses_bad_input():
    with pytest.raises(ValueError):
        stats.reliability(np.full((3, 10), 0.1), [0, 1])
    with pytest.raises(ValueError):
        stats.reliability(np.full((2, 10), 0.1), [0, 10])
    with pytest.raises(ValueError):
        stats.reliability(np.full((2, 10), 0.1), [0, 1], bins=0)


def slow_temper(row, t: float) -> list[float]:
    tiny = float(np.finfo(np.float32).tiny)
    e = [math.exp(math.log(max(float(p), tiny)) / t) for p in row]
    return [x / sum(e) for x in e]


@pytest.mark.parametrize("t", [0.3, 1.0, 2.5, 10.0])
def test_temper_matches_a_loop_keeps_argmax_and_sums_to_1(t):
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(10), 50).astype(np.float32)
    got = stats.temper(probs, t)
    assert got.dtype == np.float32 and got.shape == probs.shape
    for row, out in zip(probs, got):
        assert out == pytest.approx(slow_temper(row, t), rel=1e-5, abs=1e-30)
    assert got.sum(1) == pytest.approx(np.ones(50), abs=1e-6)
    assert (got.argmax(1) == probs.argmax(1)).all()
    single = stats.temper(probs[0], t)
    assert single.shape == (10,) and single == pytest.approx(got[0])


def test_temper_1_is_the_input_and_temperatures_compose():
    probs = np.random.default_rng(6).dirichlet(np.ones(10), 20).astype(np.float32)
    assert stats.temper(probs, 1.0) == pytest.approx(probs, rel=1e-5)
    assert stats.temper(stats.temper(probs, 2.0), 3.0) == pytest.approx(stats.temper(probs, 6.0), rel=1e-4)


def test_temper_is_safe_with_zeros():
    one_hot = np.eye(10, dtype=np.float32)[[3, 7]]
    with np.errstate(all="raise"):
        soft = stats.temper(one_hot, 3.0)
    assert np.isfinite(soft).all() and soft.argmax(1).tolist() == [3, 7]
    assert soft.sum(1) == pytest.approx([1, 1])


@pytest.mark.parametrize("t", [0.0, -1.0, math.nan, math.inf])
def test_temper_refuses_a_bad_temperature(t):
    with pytest.raises(ValueError):
        stats.temper(np.full(10, 0.1), t)


def test_nll_matches_a_loop():
    rng = np.random.default_rng(8)
    probs = rng.dirichlet(np.ones(10), 100).astype(np.float32)
    probs[0] = np.eye(10)[1]
    labels = rng.integers(0, 10, 100)
    labels[0] = 0  # a zero probability for the true class: clipped, not infinite
    tiny = float(np.finfo(np.float32).tiny)
    want = -sum(math.log(max(float(row[y]), tiny)) for row, y in zip(probs, labels)) / 100
    assert stats.nll(probs, labels) == pytest.approx(want)
    assert stats.nll([[0.5, 0.5]], [1]) == pytest.approx(math.log(2))


def calibrated(n: int = 20_000, seed: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities softmax(logits) and labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.5, (n, 10))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = (rng.random((n, 1)) > probs.cumsum(1)).sum(1)
    return probs.astype(np.float32), np.minimum(labels, 9)


def test_fit_temperature_softens_an_over_confident_model():
    probs, labels = calibrated()
    sharp = stats.temper(probs, 0.3)  # over-confident: the right fix is T = 1 / 0.3
    t = stats.fit_temperature(sharp, labels)
    assert t > 1
    assert t == pytest.approx(1 / 0.3, rel=0.1)
    assert stats.nll(stats.temper(sharp, t), labels) < stats.nll(sharp, labels)
    assert stats.ece(stats.temper(sharp, t), labels) < stats.ece(sharp, labels)
    assert stats.fit_temperature(sharp, labels) == t  # deterministic


@pytest.mark.parametrize("t0", [0.5, 1.0, 1.7, 4.0])
def test_fit_temperature_recovers_a_known_temperature(t0):
    probs, labels = calibrated(seed=int(10 * t0))
    t = stats.fit_temperature(stats.temper(probs, 1 / t0), labels)
    assert t == pytest.approx(t0, rel=0.1)


def test_fit_temperature_finds_the_minimum():
    probs, labels = calibrated(5_000)
    sharp = stats.temper(probs, 0.5)
    t = stats.fit_temperature(sharp, labels)
    best = stats.nll(stats.temper(sharp, t), labels)
    for nearby in (t * 0.99, t * 1.01):
        assert best <= stats.nll(stats.temper(sharp, nearby), labels)


def test_fit_temperature_stays_within_bounds():
    probs, labels = calibrated(2_000)
    guessing = np.random.default_rng(0).integers(0, 10, 2_000)  # labels unrelated to the sharp probabilities
    assert stats.fit_temperature(stats.temper(probs, 0.2), guessing, hi=20.0) == pytest.approx(20.0, rel=1e-3)
    always_right = probs.argmax(1)  # sharper is always better: the lower bound
    assert stats.fit_temperature(probs, always_right, lo=0.05) == pytest.approx(0.05, rel=1e-3)
    assert 0.5 <= stats.fit_temperature(probs, labels, lo=0.5, hi=2.0) <= 2.0
    with pytest.raises(ValueError):
        stats.fit_temperature(probs, labels, lo=2.0, hi=1.0)
    with pytest.raises(ValueError):
        stats.fit_temperature(probs, labels, lo=0.0)
