"""Comparing models on the same test digits, from their saved predictions alone (no model code):
where they agree, the mistakes they share, the confusions they make most, a majority vote, and
one row per digit that any of them got wrong.

Every function takes ``preds``: {key: {"pred": (n,), "label": (n,), "probs": (n, 10)}} as in
``predictions.npz``, for any number of models, and returns keys; the caller names them.
NumPy and pandas only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.stats import (
    McNemar,
    SeedComparison,
    Verdict,
    classification_report,
    compare_seeds,
    mcnemar,
    mean_sd,
    reliability,
    temper,
    verdict,
    wilson,
)


def same_labels(preds: dict[str, dict]) -> bool:
    """Whether all the models were scored on the same test digits (so they can be compared)."""
    labels = [np.asarray(p["label"]) for p in preds.values()]
    return all(len(a) == len(labels[0]) and np.array_equal(a, labels[0]) for a in labels)


def agreement_breakdown(preds: dict[str, dict], short: dict[str, str] | None = None) -> pd.DataFrame:
    """How the test digits split by which models get them right: one row per outcome.

    Columns: Outcome (words), Digits (count), kind ("all right", "one wrong", "one right",
    "all wrong") and model (the key the row is about, or None). "Only X right" rows appear
    from three models on (with two they are the "only X wrong" rows of the other).
    """
    names = list(preds)
    short = short or {n: n for n in names}
    label = preds[names[0]]["label"]
    right = {n: preds[n]["pred"] == label for n in names}
    count = np.sum([right[n] for n in names], axis=0)
    k = len(names)
    rows = [{"Outcome": f"All {k} right", "Digits": int((count == k).sum()), "kind": "all right", "model": None}]
    for n in names:
        rows.append({"Outcome": f"Only {short[n]} wrong", "Digits": int((~right[n] & (count == k - 1)).sum()),
                     "kind": "one wrong", "model": n})
    if k >= 3:
        for n in names:
            rows.append({"Outcome": f"Only {short[n]} right", "Digits": int((right[n] & (count == 1)).sum()),
                         "kind": "one right", "model": n})
    stacked = np.stack([preds[n]["pred"] for n in names])
    same_answer = (stacked == stacked[0]).all(0)
    all_wrong = count == 0
    rows.append({"Outcome": f"All {k} wrong, same answer", "Digits": int((all_wrong & same_answer).sum()),
                 "kind": "all wrong", "model": None})
    rows.append({"Outcome": f"All {k} wrong, different answers", "Digits": int((all_wrong & ~same_answer).sum()),
                 "kind": "all wrong", "model": None})
    return pd.DataFrame(rows)


def shared_errors(preds: dict[str, dict]) -> pd.DataFrame:
    """Square table by key: digits both models get wrong (the diagonal: each model's own errors)."""
    names = list(preds)
    label = preds[names[0]]["label"]
    wrong = {n: preds[n]["pred"] != label for n in names}
    return pd.DataFrame([[int((wrong[a] & wrong[b]).sum()) for b in names] for a in names], index=names, columns=names)


def top_confusions(confusions: dict[str, np.ndarray], k: int = 10) -> pd.DataFrame:
    """The (true, predicted) pairs with the most errors summed over the models.

    ``confusions``: {key: (10, 10) confusion matrix}. Columns: True, Predicted, one count
    per key, Total; at most ``k`` rows, only pairs with errors.
    """
    cms = {n: np.asarray(cm) for n, cm in confusions.items()}
    total = sum(cms.values()).astype(float)
    np.fill_diagonal(total, -1)
    rows = []
    for flat in np.argsort(total, axis=None)[::-1][:k]:
        t, p = divmod(int(flat), 10)
        if total[t, p] <= 0:
            break
        rows.append({"True": t, "Predicted": p, **{n: int(cm[t, p]) for n, cm in cms.items()},
                     "Total": int(total[t, p])})
    return pd.DataFrame(rows)


def mistakes(preds: dict[str, dict], wrong: dict[str, dict]) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Every test digit at least one model got wrong: one row per digit with each model's answer.

    ``wrong``: {key: misclassified.npz content}. Columns: index, label, and per model
    ``pred_<key>``, ``conf_<key>`` (its probability for its answer) and ``wrong_<key>``.
    Also returns {index: uint8 28x28 image}, taken from the misclassified files.
    """
    names = list(preds)
    images: dict[int, np.ndarray] = {}
    for n in names:
        for i, im in zip(wrong[n]["index"], wrong[n]["image"]):
            images.setdefault(int(i), im)
    index = np.array(sorted(images), dtype=np.int64)
    label = preds[names[0]]["label"]
    index = index[index < len(label)]
    df = pd.DataFrame({"index": index, "label": label[index].astype(int)})
    for n in names:
        probs = preds[n]["probs"][index].astype(np.float32)
        pred = preds[n]["pred"][index].astype(int)
        df[f"pred_{n}"] = pred
        df[f"conf_{n}"] = probs[np.arange(len(index)), pred]
        df[f"wrong_{n}"] = pred != df["label"].to_numpy()
    return df, images


def majority_vote(preds: dict[str, dict], accuracy: dict[str, float]) -> np.ndarray:
    """Each test digit's majority answer; where no answer has a majority of two or more, the answer of
    the most accurate model (``accuracy``: {key: test accuracy})."""
    names = sorted(preds, key=lambda n: -accuracy.get(n, 0))
    stacked = np.stack([preds[n]["pred"].astype(np.int64) for n in names])  # best model first
    counts = np.stack([(stacked == d).sum(0) for d in range(10)])  # (10, N)
    vote = counts.argmax(0)
    return np.where(counts.max(0) >= 2, vote, stacked[0])


def accuracy_table(models: list[tuple[str, dict, float | None]], seeds: list | None = None) -> pd.DataFrame:
    """One row per model, from (title, metrics as in metrics.json, write-up accuracy or None) and,
    when given, each model's ``seeds.npz`` table (or None).

    Accuracy, its 95% Wilson interval, the mean and standard deviation over seeds and the
    write-up in percent, the difference in points (NaN without a write-up), inference time in
    microseconds per image.
    """
    rows = []
    for i, (title, m, writeup) in enumerate(models):
        acc = 100 * float(m["test_accuracy"])
        n = int(m["test_size"])
        low, high = wilson(n - int(m["errors"]), n)
        table = seeds[i] if seeds else None
        mean, sd = mean_sd(table["accuracy"]) if table is not None else (np.nan, np.nan)
        rows.append({
            "Model": title,
            "Test accuracy": acc,
            "CI low": 100 * low,
            "CI high": 100 * high,
            "Seeds": 0 if table is None else len(table["seed"]),
            "Seed mean": 100 * mean,
            "Seed sd": 100 * sd,
            "Errors": int(m["errors"]),
            "Parameters": int(m["params"]),
            "Training time": float(m["train_seconds"]),
            "Inference per image": 1000 * float(m["inference_ms_per_image"]),
            "Write-up": np.nan if writeup is None else 100 * writeup,
            "Difference": np.nan if writeup is None else acc - 100 * writeup,
        })
    return pd.DataFrame(rows)


# --- is a difference real? ---------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    a: str  # entry keys
    b: str
    test: McNemar  # on the committed (or shown) models' predictions, the same test digits
    seeds: SeedComparison | None  # over every seed of each, when both have two or more
    seeds_significant: int  # seed pairs (i-th seed of each) whose own McNemar test has p < 0.05
    seeds_compared: int
    verdict: Verdict


def pairwise(models: list[tuple[str, str, dict, dict | None]], alpha: float = 0.05) -> list[Pair]:
    """Every pair of models, from (key, title, predictions as in predictions.npz, seeds table or None).

    McNemar's exact test on the digits only one of the two gets right; over seeds, the share of
    seed pairs in which one leads and a permutation test on the per-seed accuracies. The verdict
    names a winner only where both say the difference is real (``core.stats.verdict``).
    """
    out = []
    for i, (ka, ta, pa, sa) in enumerate(models):
        for kb, tb, pb, sb in models[i + 1:]:
            test = mcnemar(pa["pred"] == pa["label"], pb["pred"] == pb["label"])
            seeds, significant, compared = None, 0, 0
            if sa is not None and sb is not None:
                if len(sa["seed"]) >= 2 and len(sb["seed"]) >= 2:
                    seeds = compare_seeds(sa["accuracy"], sb["accuracy"])
                for row_a, row_b in zip(sa["pred"], sb["pred"]):
                    one = mcnemar(row_a == sa["label"], row_b == sb["label"])
                    compared += 1
                    significant += one.p < alpha
            out.append(Pair(ka, kb, test, seeds, significant, compared, verdict(ta, tb, test, seeds, alpha)))
    return out


def classification_frame(labels, pred) -> pd.DataFrame:
    """Precision, recall, F1 and support per digit (``core.stats.classification_report``) as a table."""
    r = classification_report(labels, pred)
    return pd.DataFrame({"Digit": range(10), "Precision": r["precision"], "Recall": r["recall"], "F1": r["f1"],
                         "Support": r["support"].astype(int)})


def calibration(probs, labels, temperature: float | None, bins: int = 15) -> dict:
    """The reliability of raw and (when a temperature was fitted) tempered test probabilities."""
    probs = np.asarray(probs, np.float32)
    out = {"before": reliability(probs, labels, bins)}
    if temperature is not None:
        out["after"] = reliability(temper(probs, temperature), labels, bins)
    return out


def pairs_frame(pairs: list[Pair], titles: dict[str, str]) -> pd.DataFrame:
    """One row per pair for a table: the McNemar counts and p, the seed comparison, the verdict's winner."""
    rows = []
    for p in pairs:
        s = p.seeds
        rows.append({
            "A": titles.get(p.a, p.a), "B": titles.get(p.b, p.b),
            "Only A right": p.test.only_a, "Only B right": p.test.only_b, "McNemar p": p.test.p,
            "A ahead (seed pairs)": np.nan if s is None else s.share_a_ahead,
            "Seeds p": np.nan if s is None else s.p,
            "Significant seed pairs": f"{p.seeds_significant} of {p.seeds_compared}" if p.seeds_compared else "—",
            "Verdict": {"a": f"{titles.get(p.a, p.a)} better", "b": f"{titles.get(p.b, p.b)} better"}.get(
                p.verdict.winner, "within noise"),
        })
    return pd.DataFrame(rows)


def cost_table(models: list[tuple[str, dict, dict | None]]) -> pd.DataFrame:
    """What each model costs beside what it gives, from (title, metrics, seeds table or None): accuracy
    (mean and sd over seeds, in percent), parameters, multiply-adds per image, training time (mean over
    seeds, seconds), one-image time (ms) and batch time (microseconds per image)."""
    rows = []
    for title, m, table in models:
        accs = table["accuracy"] if table is not None else [m["test_accuracy"]]
        secs = table["train_seconds"] if table is not None else [m["train_seconds"]]
        mean, sd = mean_sd(accs)
        rows.append({
            "Model": title, "Accuracy": 100 * mean, "Accuracy sd": 100 * sd, "Parameters": int(m["params"]),
            "Multiply-adds / image": m.get("multiply_adds", np.nan), "Training time": float(np.mean(secs)),
            "One image": m.get("single_image_ms", np.nan), "Batch": 1000 * float(m["inference_ms_per_image"]),
        })
    return pd.DataFrame(rows)
