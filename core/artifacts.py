"""The artifacts folder, its whole format in one place: which files there are, how each is read,
written and checked, staged writes, and loading the trained models.

    artifacts/
      manifest.json              format version, library versions, seed, data checksum, date, per-model run info
      sample.npz                 a bundled sample of test digits, class counts and per-class mean images
      <model>/settings.json      the model's settings (training settings included) and its format version
      <model>/history.json       per-epoch loss, accuracy, validation loss and accuracy, learning rate, seconds
      <model>/weights.npz | model.keras    the weights, written and read by the model class
      <model>/metrics.json       test accuracy, per-class accuracy, confusion matrix, parameters, timings
      <model>/predictions.npz    test-set probabilities (float16) and predicted digits
      <model>/misclassified.npz  every test digit the model got wrong: index, image, label, prediction, probabilities
      <model>/seeds.npz          one row per training seed (same settings): test predictions, accuracy, per-class
                                 accuracy, confusion, training time; the committed model is the settings' seed
      beyond.json                optional (python -m core.beyond): accuracy counts on handwriting beyond MNIST
      beyond.npz                 optional: the digits beyond MNIST that the models misread, as they saw them

``read(kind, name)`` returns a file's content only after checking its values, not just its
shape: a number where a number belongs, finite and in range, figures that agree with each
other, a file that belongs to the model whose folder it is in. Metrics and settings name their
model; the files that do not (history, predictions, misclassified digits) must agree with
those of their folder (``AGREES``), so a file swapped or copied from another model's folder is
refused instead of shown under the wrong name. Anything else raises
``ArtifactError`` naming the file and the command that recreates it. Everything is JSON or
``.npz`` read with ``allow_pickle=False``: no file can run code. Writes go to a staging
folder that replaces the old one only once complete, so an interrupted or failed run leaves
the previous artifacts as they were. No TensorFlow here.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.models import MODELS, model_class

FORMAT_VERSION = 2  # 2: training settings saved per model; metrics name their model
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "artifacts"
ENV_VAR = "MNIST_ARTIFACTS"
RETRAIN = "python -m core.train"
BEYOND = "python -m core.beyond"
BEYOND_FORMAT = 1  # beyond.json's own format version
BEYOND_SETS = {"unipen": ("large", "small"), "usps": ("upload",)}  # core.beyond.CONDITIONS
POLARITIES = ("white_on_black", "black_on_white")


class ArtifactError(Exception):
    """A saved model or artifact file is missing, corrupt, implausible or of another format version."""


def artifacts_dir(path=None) -> Path:
    """``path``, else $MNIST_ARTIFACTS, else the repository's ``artifacts/``."""
    return Path(path) if path is not None else Path(os.environ.get(ENV_VAR, DEFAULT_DIR))


def retrain_command(name: str | None = None) -> str:
    return f"{RETRAIN} --models {name}" if name else RETRAIN


# --- checking values: each raises ValueError with the reason ----------------------------------
def _need(ok: bool, why: str) -> None:
    if not ok:
        raise ValueError(why)


def _number(d: dict, key: str, lo: float = -math.inf, hi: float = math.inf, integer: bool = False,
            optional: bool = False):
    """d[key] as a finite number in [lo, hi] (an int if ``integer``)."""
    if optional and d.get(key) is None:
        return None
    v = d.get(key)
    kinds = (int,) if integer else (int, float)
    _need(isinstance(v, kinds) and not isinstance(v, bool), f"'{key}' is missing or not a number ({v!r})")
    _need(math.isfinite(v) and lo <= v <= hi, f"'{key}' is {v!r}, outside {lo:g} to {hi:g}")
    return v


def _array(a, shape, kind: str, lo: float | None = None, hi: float | None = None, what: str = "array"):
    """An array of this shape (None: any length), dtype kind ('i' integer, 'u' uint8, 'f' float) and range."""
    a = np.asarray(a)
    _need(a.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, a.shape)),
          f"{what} has shape {a.shape}, expected {tuple('n' if s is None else s for s in shape)}")
    if kind == "u":
        _need(a.dtype == np.uint8, f"{what} is {a.dtype}, expected uint8")
    elif kind == "i":
        _need(a.dtype.kind in "iu", f"{what} is {a.dtype}, expected integers")
    else:
        _need(a.dtype.kind in "fiu", f"{what} is {a.dtype}, expected numbers")
        _need(bool(np.isfinite(a).all()), f"{what} holds NaN or infinite values")
    if a.size and lo is not None:
        _need(float(a.min()) >= lo and float(a.max()) <= hi, f"{what} has values outside {lo:g} to {hi:g}")
    return a


def _belongs(d: dict, name: str | None) -> None:
    """A file that names its model must name the folder's: swapped folders are caught here."""
    if name is not None and "model" in d:
        _need(d["model"] == name, f"it is {d['model']!r}'s file, in {name!r}'s folder: the folders were swapped or "
                                  "copied")


def check_metrics(m, name: str | None = None) -> None:
    _need(isinstance(m, dict), "not a JSON object")
    _belongs(m, name)
    n = _number(m, "test_size", 1, integer=True)
    errors = _number(m, "errors", 0, n, integer=True)
    acc = _number(m, "test_accuracy", 0, 1)
    _number(m, "test_loss", 0)
    _number(m, "params", 1, integer=True)
    _number(m, "inference_ms_per_image", 0)
    _number(m, "single_image_ms", 0, optional=True)  # optional: absent before the seeds/calibration release
    _number(m, "multiply_adds", 1, integer=True, optional=True)
    _number(m, "train_seconds", 0)
    _number(m, "epochs", 1, integer=True, optional=True)
    _number(m, "train_size", 1, integer=True, optional=True)
    _number(m, "tta_test_accuracy", 0, 1, optional=True)  # absent before test-time augmentation was the default
    cm = _array(m.get("confusion"), (10, 10), "f", 0, n, "'confusion'")
    _need(bool((cm == np.round(cm)).all()) and int(cm.sum()) == n, f"'confusion' does not count the {n:,} test digits")
    _array(m.get("per_class_accuracy"), (10,), "f", 0, 1, "'per_class_accuracy'")
    cal = m.get("calibration")
    if cal is not None:
        _need(isinstance(cal, dict), "'calibration' is not an object")
        try:
            _number(cal, "temperature", 0.01, 100)
            _number(cal, "val_size", 1, integer=True)
            for key in ("val_nll_before", "val_nll_after"):
                _number(cal, key, 0)
            for key in ("val_ece_before", "val_ece_after", "test_ece_before", "test_ece_after"):
                _number(cal, key, 0, 1)
            _number(cal, "tta_temperature", 0.01, 100, optional=True)
            for key in ("val_ece_tta_before", "val_ece_tta_after", "test_ece_tta_after"):
                _number(cal, key, 0, 1, optional=True)
        except ValueError as e:
            raise ValueError(f"'calibration': {e}") from None
    _need(int(n - np.trace(cm)) == errors, f"'errors' is {errors} but the confusion matrix has {int(n - np.trace(cm))}")
    _need(abs(acc - np.trace(cm) / n) < 1e-6, f"'test_accuracy' is {acc} but the confusion matrix gives "
                                              f"{np.trace(cm) / n}")


def check_history(h, name: str | None = None) -> None:
    _need(isinstance(h, list) and len(h) > 0, "no epochs recorded")
    for i, r in enumerate(h, 1):
        _need(isinstance(r, dict), f"epoch {i} is not a JSON object")
        try:
            _number(r, "epoch", 1, integer=True)
            for key in ("accuracy", "val_accuracy"):
                _number(r, key, 0, 1)
            for key in ("loss", "val_loss", "seconds"):
                _number(r, key, 0)
            _number(r, "lr", 0, optional=True)
        except ValueError as e:
            raise ValueError(f"epoch {i}: {e}") from None


def check_settings(s, name: str | None = None) -> None:
    _need(isinstance(s, dict) and isinstance(s.get("settings"), dict), "no 'settings' object")
    _belongs(s, name)
    _number(s, "format_version", 1, integer=True)


def check_manifest(m, name: str | None = None) -> None:
    _need(isinstance(m, dict), f"not a JSON object but a {type(m).__name__}")
    _need(m.get("format_version") == FORMAT_VERSION,
          f"artifacts format {m.get('format_version')!r}, this code reads {FORMAT_VERSION}")
    _need(isinstance(m.get("created"), str), "'created' is missing or not a date")
    _number(m, "seed", 0, integer=True)
    _need(isinstance(m.get("data_checksum"), str), "'data_checksum' is missing or not text")
    _need(isinstance(m.get("versions"), dict), "'versions' is not an object")
    run = m.get("run")  # the last training command: absent before multi-seed runs
    if run is not None:
        _need(isinstance(run, dict), "'run' is not an object")
        _number(run, "seeds", 1, integer=True)
        _number(run, "jobs", 1, integer=True)
        _number(run, "seconds", 0)
    runs = m.get("models", {})
    _need(isinstance(runs, dict), "'models' is not an object")
    for model, run in runs.items():
        _need(model in MODELS, f"'models' names an unknown model {model!r}")
        _need(isinstance(run, dict), f"'models.{model}' is not an object")
        _need(isinstance(run.get("trained"), str), f"'models.{model}.trained' is not a date")
        try:
            _number(run, "subset", 1, integer=True, optional=True)
            _number(run, "epochs", 1, integer=True)
            _number(run, "seed", 0, integer=True)
        except ValueError as e:
            raise ValueError(f"'models.{model}': {e}") from None


def check_predictions(p, name: str | None = None) -> None:
    n = len(_array(p["label"], (None,), "i", 0, 9, "'label'"))
    _array(p["pred"], (n,), "i", 0, 9, "'pred'")
    _array(p["probs"], (n, 10), "f", 0, 1.001, "'probs'")  # float16 rounding can pass 1 a little


def check_misclassified(w, name: str | None = None) -> None:
    k = len(_array(w["index"], (None,), "i", 0, np.inf, "'index'"))
    _array(w["image"], (k, 28, 28), "u", what="'image'")
    _array(w["label"], (k,), "i", 0, 9, "'label'")
    _array(w["pred"], (k,), "i", 0, 9, "'pred'")
    _array(w["probs"], (k, 10), "f", 0, 1.001, "'probs'")
    _need(bool((np.asarray(w["label"]) != np.asarray(w["pred"])).all()), "it lists digits the model got right")


def check_seeds(s, name: str | None = None) -> None:
    """Every per-seed figure must follow from that seed's predictions: nothing can disagree silently."""
    _need(s["model"].ndim == 0 and (name is None or str(s["model"]) == name),
          f"it is {str(s['model'])!r}'s file, in {name!r}'s folder: the folders were swapped or copied")
    seeds = _array(s["seed"], (None,), "i", 0, np.inf, "'seed'")
    k = len(seeds)
    _need(k >= 1 and len(set(seeds.tolist())) == k, "'seed' must list each seed once")
    label = _array(s["label"], (None,), "i", 0, 9, "'label'")
    pred = _array(s["pred"], (k, len(label)), "i", 0, 9, "'pred'")
    acc = _array(s["accuracy"], (k,), "f", 0, 1, "'accuracy'")
    _array(s["train_seconds"], (k,), "f", 0, np.inf, "'train_seconds'")
    _array(s["epochs"], (k,), "i", 1, np.inf, "'epochs'")
    cm = _array(s["confusion"], (k, 10, 10), "i", 0, len(label), "'confusion'")
    per_class = _array(s["per_class_accuracy"], (k, 10), "f", 0, 1, "'per_class_accuracy'")
    for i in range(k):
        right = pred[i] == label
        _need(abs(float(acc[i]) - float(right.mean())) < 1e-6, f"seed {seeds[i]}: 'accuracy' does not match its predictions")
        counts = np.zeros((10, 10), np.int64)
        np.add.at(counts, (label, pred[i]), 1)
        _need(bool((counts == cm[i]).all()), f"seed {seeds[i]}: 'confusion' does not match its predictions")
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = np.nan_to_num(np.diag(counts) / counts.sum(1))
        _need(bool(np.allclose(per_class[i], expected, atol=1e-6)), f"seed {seeds[i]}: 'per_class_accuracy' does not "
                                                                     "match its predictions")


def check_sample(s, name: str | None = None) -> None:
    n = len(_array(s["labels"], (None,), "i", 0, 9, "'labels'"))
    _array(s["images"], (n, 28, 28), "u", what="'images'")
    _array(s["index"], (n,), "i", 0, np.inf, "'index'")
    _array(s["train_counts"], (10,), "i", 0, np.inf, "'train_counts'")
    _array(s["test_counts"], (10,), "i", 0, np.inf, "'test_counts'")
    _array(s["class_means"], (10, 28, 28), "f", 0, 1, "'class_means'")


def _counts(v, what: str, lo: int = 0, hi: float = math.inf) -> int:
    """A whole-number count in [lo, hi]."""
    _need(isinstance(v, int) and not isinstance(v, bool), f"{what} is missing or not a whole number ({v!r})")
    _need(lo <= v <= hi, f"{what} is {v}, outside {lo:g} to {hi:g}")
    return v


def _count_list(v, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """A list (of lists) of whole-number counts of this shape, as an array."""
    def whole(x):
        return all(whole(y) for y in x) if isinstance(x, list) else isinstance(x, int) and not isinstance(x, bool)

    _need(isinstance(v, list) and whole(v), f"{what} is missing or not a list of whole numbers")
    a = np.asarray(v)
    _need(a.shape == shape, f"{what} has shape {a.shape}, expected {shape}")
    _need(bool((a >= 0).all()), f"{what} holds a negative count")
    return a.astype(np.int64)


def _beyond_entry(r, names: list[str]) -> None:
    _need(isinstance(r, dict), "not a JSON object")
    _need(r.get("set") in BEYOND_SETS, f"unknown set {r.get('set')!r}")
    _need(r.get("condition") in BEYOND_SETS[r["set"]], f"unknown condition {r.get('condition')!r}")
    n = _counts(r.get("n"), "'n'", 1)
    no_digit = _counts(r.get("no_digit"), "'no_digit'", 0, n)
    class_n = _count_list(r.get("class_n"), "'class_n'", (10,))
    _need(int(class_n.sum()) == n, f"'class_n' counts {int(class_n.sum())} digits, not n = {n}")
    class_none = _count_list(r.get("class_no_digit"), "'class_no_digit'", (10,))
    _need(bool((class_none <= class_n).all()) and int(class_none.sum()) == no_digit,
          "'class_no_digit' does not agree with 'class_n' and 'no_digit'")
    polarity = r.get("polarity")
    _need(isinstance(polarity, dict) and set(polarity) == set(POLARITIES), "'polarity' does not name both polarities")
    _need(sum(_counts(polarity[p], f"'polarity.{p}'", 0, n) for p in POLARITIES) == n, "'polarity' does not count n")
    models = r.get("models")
    _need(isinstance(models, dict) and list(models) == names, f"'models' are not the file's models {names}")
    for name, m in models.items():
        try:
            _need(isinstance(m, dict), "not a JSON object")
            correct = _counts(m.get("correct"), "'correct'", 0, n)
            _need(correct <= n - no_digit, f"'correct' is {correct}, more than the {n - no_digit} digits answered")
            per_class = _count_list(m.get("class_correct"), "'class_correct'", (10,))
            cm = _count_list(m.get("confusion"), "'confusion'", (10, 10))
            _need(int(cm.sum()) == n - no_digit, f"'confusion' counts {int(cm.sum())} digits, not the "
                                                 f"{n - no_digit} answered (n less no_digit)")
            _need(bool((cm.sum(1) == class_n - class_none).all()), "'confusion' rows do not match 'class_n'")
            _need(bool((np.diag(cm) == per_class).all()), "'class_correct' is not the confusion's diagonal")
            _need(int(np.trace(cm)) == correct, f"'correct' is {correct} but the confusion's diagonal holds "
                                               f"{int(np.trace(cm))}")
            pc = m.get("polarity_correct")
            _need(isinstance(pc, dict) and set(pc) == set(POLARITIES), "'polarity_correct' does not name both")
            _need(sum(_counts(pc[p], f"'polarity_correct.{p}'", 0, polarity[p]) for p in POLARITIES) == correct,
                  "'polarity_correct' does not add up to 'correct'")
        except ValueError as e:
            raise ValueError(f"'models.{name}': {e}") from None
    writers = r.get("writers")
    if writers is not None:
        _need(isinstance(writers, dict), "'writers' is not an object")
        total = 0
        for w, c in writers.items():
            _need(isinstance(c, dict) and isinstance(c.get("correct"), dict) and list(c["correct"]) == names,
                  f"'writers.{w}' does not count the file's models")
            k = _counts(c.get("n"), f"'writers.{w}.n'", 1, n)
            total += k
            for name, v in c["correct"].items():
                _counts(v, f"'writers.{w}.correct.{name}'", 0, k)
        _need(total == n, f"'writers' count {total} digits, not n = {n}")


def check_beyond(b, name: str | None = None) -> None:
    _need(isinstance(b, dict), f"not a JSON object but a {type(b).__name__}")
    _need(b.get("format_version") == BEYOND_FORMAT, f"format {b.get('format_version')!r}, this code reads "
                                                   f"{BEYOND_FORMAT}")
    _need(isinstance(b.get("created"), str), "'created' is missing or not a date")
    _need(isinstance(b.get("settings"), dict), "'settings' is not an object")
    _number(b["settings"], "seed", integer=True)
    _need(isinstance(b.get("data"), dict), "'data' is not an object")
    models = b.get("models")
    _need(isinstance(models, dict) and models, "'models' is missing or empty")
    for model, info in models.items():
        _need(model in MODELS, f"'models' names an unknown model {model!r}")
        _need(isinstance(info, dict), f"'models.{model}' is not an object")
        try:
            size = _number(info, "mnist_test_size", 1, integer=True)
            _number(info, "mnist_errors", 0, size, integer=True)
            _number(info, "mnist_test_accuracy", 0, 1)
        except ValueError as e:
            raise ValueError(f"'models.{model}': {e}") from None
    results = b.get("results")
    _need(isinstance(results, list) and results, "'results' is missing or empty")
    seen = set()
    for i, r in enumerate(results, 1):
        try:
            _beyond_entry(r, list(models))
        except ValueError as e:
            raise ValueError(f"result {i}: {e}") from None
        key = (r["set"], r["condition"])
        _need(key not in seen, f"result {i}: {'/'.join(key)} is there twice")
        seen.add(key)


def _text(a, shape, what: str, allowed=None) -> np.ndarray:
    a = np.asarray(a)
    _need(a.dtype.kind == "U", f"{what} is {a.dtype}, expected text")
    _need(a.shape == shape, f"{what} has shape {a.shape}, expected {shape}")
    if allowed is not None:
        bad = sorted(set(a.tolist()) - set(allowed))
        if bad:
            raise ValueError(f"{what} holds {bad[0]!r}, not one of {', '.join(allowed)}")
    return a


def check_beyond_gallery(g, name: str | None = None) -> None:
    models = _text(g["models"], (len(np.asarray(g["models"])),), "'models'", MODELS)
    _need(len(models) > 0 and len(set(models.tolist())) == len(models), "'models' is empty or names one twice")
    k = len(_array(g["label"], (None,), "i", 0, 9, "'label'"))
    _array(g["image"], (k, 28, 28), "u", what="'image'")
    pred = _array(g["pred"], (k, len(models)), "i", 0, 9, "'pred'")
    _array(g["index"], (k,), "i", 0, np.inf, "'index'")
    sets = _text(g["set"], (k,), "'set'", list(BEYOND_SETS))
    conditions = _text(g["condition"], (k,), "'condition'")
    _need(all(c in BEYOND_SETS[s] for s, c in zip(sets.tolist(), conditions.tolist())),
          "'condition' names a condition its set does not have")
    _text(g["writer"], (k,), "'writer'")
    _text(g["polarity"], (k,), "'polarity'", POLARITIES)
    _need(bool((pred != np.asarray(g["label"])[:, None]).any(1).all()), "it lists digits every model got right")


# --- files that do not name their model must agree with those that do -----------------------
def agrees_history(h, name: str, folder) -> None:
    """The epochs and the learning-rate schedule are those of the model's settings and metrics.

    That is all a history says of its model: two models trained as long at the same rate (the Keras MLP
    and LeNet, both Adam 2e-3, trained the same epochs) cannot be told apart by their histories."""
    from core.models.base import cosine_lr

    train = read("settings", name, folder)["settings"].get("train", {})
    metrics = read("metrics", name, folder)
    epochs, lr = train.get("epochs"), train.get("lr")
    _need(metrics.get("epochs") in (None, len(h)), f"it records {len(h)} epochs, the model's metrics.json "
                                                    f"{metrics.get('epochs')}")
    if isinstance(epochs, int) and isinstance(lr, (int, float)):
        _need(len(h) <= epochs, f"it records {len(h)} epochs, the model's settings.json asks for {epochs}")
        for i, r in enumerate(h):
            if r.get("lr") is not None:
                _need(math.isclose(r["lr"], cosine_lr(lr, i, epochs), rel_tol=1e-6, abs_tol=1e-12),
                      f"epoch {i + 1}'s learning rate {r['lr']:g} is not the schedule of the model's settings.json "
                      f"({lr:g} over {epochs} epochs)")


def _confusion(label, pred) -> np.ndarray:
    return np.bincount(np.asarray(label, np.int64) * 10 + np.asarray(pred, np.int64), minlength=100).reshape(10, 10)


def agrees_predictions(p, name: str, folder) -> None:
    """The predictions give the model's confusion matrix (metrics.json)."""
    cm = np.asarray(read("metrics", name, folder)["confusion"])
    _need(bool((_confusion(p["label"], p["pred"]) == cm).all()),
          "its answers do not give the confusion matrix of the model's metrics.json")


def agrees_misclassified(w, name: str, folder) -> None:
    """The mistakes are those the model's confusion matrix counts off its diagonal (metrics.json)."""
    cm = np.asarray(read("metrics", name, folder)["confusion"]).copy()
    np.fill_diagonal(cm, 0)
    _need(bool((_confusion(w["label"], w["pred"]) == cm).all()),
          "its mistakes are not those of the model's metrics.json")


AGREES = {"history": agrees_history, "predictions": agrees_predictions, "misclassified": agrees_misclassified}


# --- the table of files ----------------------------------------------------------------------
@dataclass(frozen=True)
class ArtifactFile:
    filename: str
    per_model: bool  # in <model>/ (True) or at the top of the folder
    keys: tuple[str, ...] | None  # the arrays of an .npz file; None for JSON
    check: Callable  # (content, model name or None) -> None, raises ValueError
    command: str = RETRAIN  # the command that (re)creates it
    optional: bool = False  # absent from older artifacts folders: pages say how to create it, nothing more


FILES = {  # what each holds: see the module docstring
    "manifest": ArtifactFile("manifest.json", False, None, check_manifest),
    "sample": ArtifactFile("sample.npz", False, ("images", "labels", "index", "train_counts", "test_counts",
                                                 "class_means"), check_sample),
    "settings": ArtifactFile("settings.json", True, None, check_settings),
    "history": ArtifactFile("history.json", True, None, check_history),
    "metrics": ArtifactFile("metrics.json", True, None, check_metrics),
    "predictions": ArtifactFile("predictions.npz", True, ("probs", "pred", "label"), check_predictions),
    "misclassified": ArtifactFile("misclassified.npz", True, ("index", "image", "label", "pred", "probs"),
                                  check_misclassified),
    "seeds": ArtifactFile("seeds.npz", True, ("model", "seed", "accuracy", "per_class_accuracy", "confusion",
                                              "train_seconds", "epochs", "pred", "label"), check_seeds, RETRAIN,
                          True),
    "beyond": ArtifactFile("beyond.json", False, None, check_beyond, BEYOND, True),
    "beyond_gallery": ArtifactFile("beyond.npz", False, ("models", "image", "label", "pred", "set", "condition",
                                                         "writer", "index", "polarity"), check_beyond_gallery,
                                   BEYOND, True),
}
MANIFEST, SAMPLE = FILES["manifest"].filename, FILES["sample"].filename


def path(kind: str, name: str | None = None, folder=None) -> Path:
    f = FILES[kind]
    base = artifacts_dir(folder)
    return base / name / f.filename if f.per_model else base / f.filename


def read_json(p: Path):
    try:
        return json.loads(Path(p).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{p} is missing.") from None
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{p} is corrupt ({e}).") from e


def read_npz(p: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` file, never unpickling; ArtifactError naming the file if unusable."""
    try:
        # Our own handle: np.load leaves the file open when a damaged archive makes it raise.
        with open(p, "rb") as handle, np.load(handle, allow_pickle=False) as f:
            return {k: f[k] for k in keys}
    except FileNotFoundError:
        raise ArtifactError(f"{p} is missing.") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        why = "it holds Python objects, which are never loaded" if "pickle" in str(e) else e  # not NumPy's advice
        raise ArtifactError(f"{p} is corrupt ({why}).") from e


def read(kind: str, name: str | None = None, folder=None):
    """One artifact file's content, checked; raises ArtifactError naming the file and the fix."""
    f = FILES[kind]
    p = path(kind, name, folder)
    fix = retrain_command(name) if f.command == RETRAIN else f.command
    try:
        data = read_npz(p, f.keys) if f.keys else read_json(p)
    except ArtifactError as e:
        raise ArtifactError(f"{e} Recreate it with: {fix}") from None
    try:
        f.check(data, name)
    except (ValueError, TypeError, KeyError) as e:
        raise ArtifactError(f"{p} is corrupt ({e}). Recreate it with: {fix}") from None
    if name is not None and kind in AGREES:
        try:
            AGREES[kind](data, name, folder)
        except ArtifactError as e:
            raise ArtifactError(f"{p} cannot be checked against the rest of {name}'s folder: {e}") from None
        except (ValueError, TypeError, KeyError) as e:
            raise ArtifactError(f"{p} is not {name}'s ({e}): the model folders' files were swapped or copied. "
                                f"Recreate it with: {fix}") from None
    return data


def write(kind: str, content, folder, name: str | None = None) -> Path:
    """Write one artifact file (into a staging folder); JSON or compressed ``.npz`` by the table."""
    p = path(kind, name, folder)
    p.parent.mkdir(parents=True, exist_ok=True)
    if FILES[kind].keys:
        np.savez_compressed(p, **{k: content[k] for k in FILES[kind].keys})
    else:
        p.write_text(json.dumps(content, indent=1))
    return p


def load_model(name: str, path=None):
    """One trained model from ``path`` (default: see ``artifacts_dir``); raises ArtifactError if unusable."""
    return model_class(name).load(artifacts_dir(path) / name)


def load_models(path=None, names=None) -> dict:
    """All three trained models (or ``names``), in display order."""
    return {name: load_model(name, path) for name in (names or MODELS)}


def status(folder=None) -> dict[str, str | None]:
    """For each model, None if its figures are all readable, else the message saying what is wrong."""
    out = {}
    for name in MODELS:
        try:
            for kind in ("metrics", "history", "settings"):
                read(kind, name, folder)
            out[name] = None
        except ArtifactError as e:
            out[name] = str(e)
    return out


# --- writing safely -----------------------------------------------------------------------------
def is_artifacts_folder(folder: Path) -> bool:
    """Whether ``folder`` already holds artifacts (a manifest, or a model's settings)."""
    return (folder / MANIFEST).is_file() or any((folder / name / FILES["settings"].filename).is_file()
                                                 for name in MODELS)


def check_out(out) -> Path:
    """The folder a run may write to: new, empty, or an artifacts folder; else ArtifactError.

    Staging copies what ``out`` holds, so a wrong ``--out`` (a file, a home directory) would be
    turned into a folder or copied whole: refuse it before anything happens.
    """
    out = Path(out).expanduser().resolve()
    if not out.exists():
        return out
    if not out.is_dir():
        raise ArtifactError(f"{out} exists and is a file, not an artifacts folder: choose a new folder or an artifacts folder.")
    if any(out.iterdir()) and not is_artifacts_folder(out):
        raise ArtifactError(f"{out} is a folder with other files in it, not an artifacts folder: choose a new "
                            "or empty folder, or an existing artifacts folder to update.")
    return out


@contextmanager
def staging(out):
    """Yield a staging copy of ``out``; on success it replaces ``out``, on error it is discarded.

    The copy starts with everything ``out`` already holds, so a run that trains one model
    keeps the others' artifacts. The swap is two renames in the same folder.
    """
    out = check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _restore_interrupted_swap(out)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would otherwise become the artifacts folder's mode
    try:
        if out.is_dir():
            shutil.copytree(out, tmp, dirs_exist_ok=True)
        yield tmp
        old = out.parent / f"{out.name}.old-{os.getpid()}"
        with _signals_ignored():  # Ctrl-C or SIGTERM between the two renames would leave no `out`
            if out.exists():
                out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _restore_interrupted_swap(out: Path) -> None:
    """A run killed (SIGKILL, power loss) between staging's two renames leaves the previous
    artifacts as ``<out>.old-<pid>`` and no ``out``: put them back."""
    if not out.exists():
        old = sorted(out.parent.glob(f"{out.name}.old-*"), key=lambda p: p.stat().st_mtime)
        if old and old[-1].is_dir():
            old[-1].rename(out)


@contextmanager
def _signals_ignored():
    """Ignore SIGINT and SIGTERM for the duration (main thread only).

    The swap is the run's commit point and takes milliseconds: an interrupt arriving then
    comes too late to cancel the run, which completes normally a moment later.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(s, handler)
