"""core.compare against slow, obvious loops over the digits, on random predictions of 2 to 4 models."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from core import compare


def random_preds(k: int, n: int = 300, seed: int = 0) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 10, n).astype(np.uint8)
    out = {}
    for i in range(k):  # each model right about 80% of the time, else a random digit
        pred = np.where(rng.random(n) < 0.8, label, rng.integers(0, 10, n)).astype(np.uint8)
        probs = rng.dirichlet(np.ones(10), n).astype(np.float32)
        out[f"m{i}"] = {"label": label, "pred": pred, "probs": probs}
    return out


@pytest.mark.parametrize("k", [2, 3, 4])
def test_agreement_breakdown_counts_every_digit_once(k):
    preds = random_preds(k)
    table = compare.agreement_breakdown(preds)
    label = preds["m0"]["label"]
    expected = Counter()
    for i in range(len(label)):
        right = [n for n in preds if preds[n]["pred"][i] == label[i]]
        answers = {int(preds[n]["pred"][i]) for n in preds}
        if len(right) == k:
            expected[f"All {k} right"] += 1
        elif len(right) == k - 1:
            expected[f"Only {next(n for n in preds if n not in right)} wrong"] += 1
        elif len(right) == 1 and k >= 3:
            expected[f"Only {right[0]} right"] += 1
        elif not right:
            expected[f"All {k} wrong, {'same answer' if len(answers) == 1 else 'different answers'}"] += 1
    got = dict(zip(table["Outcome"], table["Digits"]))
    assert {o: c for o, c in got.items() if c} == dict(expected)


def test_shared_errors_and_majority_vote():
    preds = random_preds(3, seed=1)
    label = preds["m0"]["label"]
    shared = compare.shared_errors(preds)
    for a in preds:
        for b in preds:
            assert shared.loc[a, b] == sum(preds[a]["pred"][i] != label[i] and preds[b]["pred"][i] != label[i]
                                           for i in range(len(label)))
    acc = {"m0": 0.7, "m1": 0.9, "m2": 0.8}
    vote = compare.majority_vote(preds, acc)
    for i in range(len(label)):
        answers = Counter(int(preds[n]["pred"][i]) for n in preds)
        digit, count = answers.most_common(1)[0]
        assert vote[i] == (digit if count >= 2 else preds["m1"]["pred"][i])  # m1 is the most accurate


def test_top_confusions_and_mistakes():
    preds = random_preds(2, seed=2)
    label = preds["m0"]["label"]
    cms = {n: np.bincount(label * 10 + p["pred"], minlength=100).reshape(10, 10) for n, p in preds.items()}
    top = compare.top_confusions(cms, k=5)
    totals = Counter((int(t), int(p["pred"][i])) for p in preds.values() for i, t in enumerate(label)
                     if p["pred"][i] != t)
    assert list(top["Total"]) == sorted(totals.values(), reverse=True)[:5]
    for _, row in top.iterrows():
        assert row["Total"] == totals[(row["True"], row["Predicted"])] == row["m0"] + row["m1"]
    wrong = {n: {"index": np.flatnonzero(p["pred"] != label),
                 "image": np.zeros((int((p["pred"] != label).sum()), 28, 28), np.uint8)} for n, p in preds.items()}
    df, images = compare.mistakes(preds, wrong)
    assert set(df["index"]) == {i for i in range(len(label)) if any(p["pred"][i] != label[i] for p in preds.values())}
    assert set(images) == set(df["index"])
    for _, row in df.iterrows():
        for n, p in preds.items():
            assert row[f"wrong_{n}"] == (p["pred"][row["index"]] != label[row["index"]])
            assert row[f"conf_{n}"] == pytest.approx(p["probs"][row["index"], p["pred"][row["index"]]])
