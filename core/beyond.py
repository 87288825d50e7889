"""Beyond MNIST: how well the models read handwriting from people who are not in MNIST.

Two development sets that the project never trains on (README.md in the data folder):
UNIPEN pen-tablet digits (strokes, 41 writers) and USPS postal scans (16x16). Each digit is
rendered the way the app receives real input and goes through exactly the Draw page's path,
``core.predict.predict_image``: a canvas array or an uploaded file's bytes, ``read_image`` for
files, then ``to_mnist``; the models then read the prepared digits in batches, as the Draw page
does: each digit and its ``TTA_WARPS`` views, averaged (``Model.tta_proba``), or once with
``--one-reading`` (as the Results page's MNIST figures are read). The MNIST test accuracy recorded
beside is read the same way.

    python -m core.beyond [--data-dir DIR] [--out ARTIFACTS_DIR] [--limit N] [--seed S] [--one-reading]

    from core import load_models
    from core import beyond
    result = beyond.measure(load_models(), limit=500)          # the report as a dict
    a, b = beyond.split_writers(beyond.writers(), seed=0)      # tune on a, check on b
    tuned = beyond.measure(models, writers=a)                  # UNIPEN, those writers only
    beyond.writer_halves(result, "lenet", beyond.writers())    # the same halves, from a full run's counts

How each set is rendered (seeded per digit, so a digit looks the same in any subset):

- UNIPEN, as canvas drawings: 280x280 RGBA as streamlit-drawable-canvas gives the Draw page
  (white pen on an opaque black background), each stroke a polyline with round joins and caps,
  anti-aliased (drawn at 4x and box-filtered down), physical aspect ratio kept. Two conditions:
  "large" (ink 60-70% of the canvas high, near the centre) and "small" (25-40% high, anywhere,
  fully inside). The pen is 7-16% of the ink's height, kept within the Draw page's slider
  (8-40 px), so small digits get thin pens rather than blobs. One digit in four is instead
  black ink on white paper, encoded as a PNG and read as an upload (``read_image``), as a photo
  of paper would arrive; ``to_mnist`` finds ink of either polarity, so the two must agree.
- USPS, as uploads: the 16x16 scan upscaled to 160x160 grey (bicubic), half of the digits
  light ink on dark, half dark on light, encoded as PNG and read with ``read_image``.

A digit where the preprocessing finds no digit (``NoDigit``) counts as wrong for every model
and is counted on its own (``no_digit``); none is dropped. The command writes
``beyond.json`` (counts, per-class counts, confusions, settings, data checksums, the models and
their MNIST test accuracy) and ``beyond.npz`` (up to 60 misread digits per set and condition:
the 28x28 images the models saw) into the artifacts folder, staged, so an interrupted run
leaves the previous artifacts as they were, and prints a table that ends with each model's
accuracy on the two halves of the UNIPEN writers. Accuracies are computed from the counts; their
intervals with ``core.stats.wilson``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.models import MODELS, SPECS
from core.pixels import TTA_WARPS
from core.predict import predict_image
from core.preprocess import NoDigit
from core.stats import wilson

FORMAT_VERSION = 1
ENV_VAR = "HANDWRITING_DIR"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "handwriting"
DATA_FILES = {"unipen": "unipen-dev.jsonl.gz", "usps": "usps-train.gz"}
CHECKSUMS = {  # sha256 of the files the committed results were measured on (the data folder's README)
    "unipen-dev.jsonl.gz": "20ecd68d3766a0c001fc54efd8b6752b104e72d6bd290802df5a227f9e89c6cd",
    "usps-train.gz": "66ebf231ab51f2cf6ac1a892d0f98ccffee1079d7a5db638c1f11f366046ca16",
}
COMMAND = "python -m core.beyond"

CANVAS = 280  # the Draw page's canvas, in pixels
SUPERSAMPLE = 4  # strokes are drawn at 4x and box-filtered down: anti-aliased edges, as a browser draws
PEN = (8, 40)  # the Draw page's pen-width slider, in pixels
PEN_RATIO = (0.07, 0.16)  # pen width / ink height, log-uniform (MNIST's is about 0.12)
MARGIN = 0.05  # the ink keeps this share of the canvas from every edge
LARGE_JITTER = 0.05  # a large digit's centre is up to 5% of the canvas off the middle
USPS_UPLOAD = 160  # the USPS scans' upload size, in pixels
GALLERY = 60  # misread digits kept per set and condition
WHITE_ON_BLACK, BLACK_ON_WHITE = "white_on_black", "black_on_white"
POLARITIES = (WHITE_ON_BLACK, BLACK_ON_WHITE)
GALLERY_KEYS = ("models", "image", "label", "pred", "set", "condition", "writer", "index", "polarity")


@dataclass(frozen=True)
class Condition:
    set: str  # "unipen" or "usps"
    name: str  # "large", "small" or "upload"
    title: str  # how tables and the page name it
    heights: tuple[float, float] | None  # UNIPEN: the ink's height as a share of the canvas
    paper: float  # the share of digits given as dark ink on light paper, read as an upload
    how: str  # one line for the page

    @property
    def key(self) -> str:
        return f"{self.set}/{self.name}"


CONDITIONS = (
    Condition("unipen", "large", "UNIPEN, drawn large", (0.60, 0.70), 0.25,
              "Pen-tablet strokes drawn on the 280x280 canvas, ink 60-70% of its height, near the centre."),
    Condition("unipen", "small", "UNIPEN, drawn small", (0.25, 0.40), 0.25,
              "The same strokes drawn small, 25-40% of the canvas high, anywhere on it."),
    Condition("usps", "upload", "USPS, uploaded scans", None, 0.5,
              "Postal scans, 16x16 upscaled to 160x160 and uploaded as PNG files."),
)
SETS = tuple(dict.fromkeys(c.set for c in CONDITIONS))
SET_TITLES = {"unipen": "UNIPEN", "usps": "USPS"}


class DataMissing(Exception):
    """The handwriting files are not where they were looked for; the message says what to put where."""


class DataError(Exception):
    """A handwriting file is there but unusable; the message names it."""


# --- finding and reading the data ----------------------------------------------------------------
def candidates(data_dir=None) -> list[Path]:
    """Where the data is looked for: ``data_dir`` alone if given, else $HANDWRITING_DIR, then the default."""
    if data_dir is not None:
        return [Path(data_dir)]
    env = os.environ.get(ENV_VAR)
    return [*([Path(env)] if env else []), DEFAULT_DATA_DIR]


def find_data(data_dir=None) -> Path:
    """The first folder holding both files; raises DataMissing saying exactly what to put where."""
    looked = []
    for folder in candidates(data_dir):
        missing = [f for f in DATA_FILES.values() if not (folder / f).is_file()]
        if not missing:
            return folder
        looked.append(f"{folder} ({'no such folder' if not folder.is_dir() else 'lacks ' + ', '.join(missing)})")
    target = candidates(data_dir)[0]
    raise DataMissing(
        f"The handwriting sets are missing. Put {DATA_FILES['unipen']} and {DATA_FILES['usps']} in "
        f"{target.resolve()}" + ("" if data_dir is not None else
                                 f" (or in a folder named by --data-dir DIR or the {ENV_VAR} environment variable)")
        + f". Looked in: {'; '.join(looked)}.")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open_text(path: Path):
    try:
        return gzip.open(path, "rt", encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e}).") from e


def _lines(path: Path):
    """(line number, line) for every line of a gzipped text file that is not blank; DataError if it
    is corrupt or truncated. A DataError the caller raises about a line passes through untouched."""
    try:
        with _open_text(path) as f:
            for line_no, line in enumerate(f, 1):
                if line.strip():
                    yield line_no, line
    except (OSError, EOFError) as e:
        raise DataError(f"{path} is corrupt or truncated ({e}).") from e


def load_unipen(path: Path) -> dict:
    """{"label": int (n,), "writer": str (n,), "strokes": [[float (k, 2) array, ...], ...]}; DataError if damaged."""
    labels, writers, strokes = [], [], []
    for line_no, line in _lines(path):
        try:
            d = json.loads(line)
            label, writer = d["label"], d["writer"]
            parts = [np.asarray(s, np.float64).reshape(-1, 2) for s in d["strokes"]]
            if not isinstance(label, int) or not 0 <= label <= 9 or not isinstance(writer, str):
                raise ValueError(f"label {label!r}, writer {writer!r}")
            if not parts or not all(len(p) for p in parts) or not all(np.isfinite(p).all() for p in parts):
                raise ValueError("no strokes, an empty stroke or a coordinate that is not a number")
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}, line {line_no}: not a digit record ({e}).") from None
        labels.append(label)
        writers.append(writer)
        strokes.append(parts)
    if not labels:
        raise DataError(f"{path} holds no digits.")
    return {"label": np.asarray(labels, np.int64), "writer": np.asarray(writers), "strokes": strokes}


def load_usps(path: Path) -> dict:
    """{"label": int (n,), "image": float32 (n, 16, 16) ink in [0, 1]}; DataError if damaged."""
    labels, images = [], []
    for line_no, line in _lines(path):
        try:
            v = np.asarray(line.split(), np.float64)
        except ValueError as e:
            raise DataError(f"{path}, line {line_no}: not numbers ({e}).") from None
        label = v[0] if len(v) else -1
        if len(v) != 257 or label != round(label) or not 0 <= label <= 9 or not np.isfinite(v).all() \
                or np.abs(v[1:]).max() > 1:
            raise DataError(f"{path}, line {line_no}: expected a label 0-9 and 256 values in [-1, 1].")
        labels.append(int(label))
        images.append(((v[1:] + 1) / 2).reshape(16, 16))
    if not labels:
        raise DataError(f"{path} holds no digits.")
    return {"label": np.asarray(labels, np.int64), "image": np.asarray(images, np.float32)}


def load(data_dir=None, sets: Iterable[str] = SETS) -> tuple[Path, dict]:
    """(folder, {set: data}) for ``sets``; raises DataMissing or DataError."""
    folder = find_data(data_dir)
    readers = {"unipen": load_unipen, "usps": load_usps}
    return folder, {s: readers[s](folder / DATA_FILES[s]) for s in sets}


def writers(data_dir=None) -> list[str]:
    """The UNIPEN writer ids, sorted."""
    return sorted(set(load_unipen(find_data(data_dir) / DATA_FILES["unipen"])["writer"].tolist()))


def split_writers(writers: Iterable[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """Two disjoint halves of the writers (sorted lists) covering all of them, seeded.

    Split by writer, never by digit: one person's digits look alike, so digits of one writer on
    both sides would make the second half look easier than new writers are.
    """
    ids = sorted(set(writers))
    order = np.random.default_rng([seed, 7]).permutation(len(ids))
    half = (len(ids) + 1) // 2
    return sorted(ids[i] for i in order[:half]), sorted(ids[i] for i in order[half:])


def select(labels: np.ndarray, limit: int | None, seed: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices: every digit (in ``mask``), or ``limit`` of them balanced across the ten classes."""
    pool = np.flatnonzero(np.ones(len(labels), bool) if mask is None else mask)
    if limit is None or limit >= len(pool):
        return pool
    rng = np.random.default_rng([seed, 11])
    by_class = [pool[labels[pool] == c] for c in range(10)]
    quota = np.zeros(10, int)
    left = limit
    while left > 0:  # deal one at a time to the classes that still have digits: balanced as far as possible
        open_ = [c for c in range(10) if quota[c] < len(by_class[c])]
        for c in open_[:left]:
            quota[c] += 1
        left -= min(left, len(open_))
    return np.sort(np.concatenate([rng.choice(by_class[c], quota[c], replace=False) for c in range(10)]))


# --- rendering ---------------------------------------------------------------------------------------
def digit_rng(seed: int, cond: Condition, index: int) -> np.random.Generator:
    """The digit's own generator: the same rendering whatever subset it is measured in."""
    return np.random.default_rng([seed, CONDITIONS.index(cond), index])


def _scale(extent: np.ndarray, height: float, pen: float, max_width: float | None) -> float:
    """Pixels per data unit: the ink ``height`` high (pen included), at most ``max_width`` wide."""
    max_width = CANVAS * (1 - 2 * MARGIN) if max_width is None else max_width
    scale = (height - pen) / extent[1] if extent[1] > 0 else np.inf
    if extent[0] > 0:
        scale = min(scale, (max_width - pen) / extent[0])
    return 0.0 if not np.isfinite(scale) else max(float(scale), 0.0)


def stroke_canvas(strokes, height: float, pen: float, centre: tuple[float, float],
                  max_width: float | None = None) -> np.ndarray:
    """Pen coverage, float32 (CANVAS, CANVAS) in [0, 1]: the strokes drawn as polylines with round joins and caps.

    ``height`` is the ink's height in pixels, pen included; ``max_width`` (default: the canvas less
    its margins) caps the ink's width, for digits much wider than tall. Aspect ratio is kept.
    ``centre`` is where the middle of the ink's box goes. Every vertex gets a disc the pen's width,
    so a one-point stroke is a dot and corners are round.
    """
    points = np.concatenate(strokes)
    lo, hi = points.min(0), points.max(0)
    scale = _scale(hi - lo, height, pen, max_width)
    mid = (lo + hi) / 2
    s = SUPERSAMPLE
    im = Image.new("L", (CANVAS * s, CANVAS * s), 0)
    draw = ImageDraw.Draw(im)
    r = pen * s / 2
    for stroke in strokes:
        xy = ((stroke - mid) * scale + centre) * s
        flat = [(float(x), float(y)) for x, y in xy]
        if len(flat) > 1:
            draw.line(flat, fill=255, width=max(1, round(pen * s)))
        for x, y in flat:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(im.reduce(s), np.float32) * np.float32(1 / 255)


def ink_size(strokes, height: float, pen: float, max_width: float | None = None) -> tuple[float, float]:
    """(width, height) in pixels of the ink ``stroke_canvas`` draws, pen included."""
    points = np.concatenate(strokes)
    extent = points.max(0) - points.min(0)
    scale = _scale(extent, height, pen, max_width)
    return float(extent[0] * scale + pen), float(extent[1] * scale + pen)


def plan_strokes(strokes, cond: Condition, rng: np.random.Generator) -> dict:
    """How one UNIPEN digit is drawn: ink height, pen, centre (pixels) and polarity."""
    height = rng.uniform(*cond.heights) * CANVAS
    pen = float(np.clip(round(height * np.exp(rng.uniform(*np.log(PEN_RATIO)))), *PEN))
    width, height_drawn = ink_size(strokes, height, pen)
    margin = MARGIN * CANVAS
    half = np.array([width, height_drawn]) / 2
    lo, hi = margin + half, CANVAS - margin - half  # where the centre may go, ink fully inside
    hi = np.maximum(hi, lo)
    if cond.name == "large":
        centre = CANVAS / 2 + rng.uniform(-LARGE_JITTER, LARGE_JITTER, 2) * CANVAS
    else:
        centre = rng.uniform(lo, hi)
    centre = np.clip(centre, lo, hi)
    polarity = BLACK_ON_WHITE if rng.random() < cond.paper else WHITE_ON_BLACK
    return {"height": float(height), "pen": pen, "centre": (float(centre[0]), float(centre[1])),
            "polarity": polarity}


def canvas_image(coverage: np.ndarray) -> np.ndarray:
    """Pen coverage -> uint8 RGBA (H, W, 4): the canvas's ``image_data`` for a white pen on opaque black."""
    v = np.round(coverage * 255).astype(np.uint8)
    return np.dstack([v, v, v, np.full_like(v, 255)])


def png_bytes(grey: np.ndarray) -> bytes:
    """A uint8 grey image as the bytes of a PNG file, as an upload would arrive."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(grey, np.uint8), "L").save(buf, format="PNG")
    return buf.getvalue()


def paper_upload(coverage: np.ndarray) -> bytes:
    """Pen coverage -> a PNG of dark ink on white paper."""
    return png_bytes(255 - np.round(coverage * 255).astype(np.uint8))


def draw_strokes(strokes, cond: Condition, rng: np.random.Generator):
    """(input as the Draw page receives it, polarity): an RGBA canvas array, or PNG bytes for paper."""
    plan = plan_strokes(strokes, cond, rng)
    coverage = stroke_canvas(strokes, plan["height"], plan["pen"], plan["centre"])
    if plan["polarity"] == BLACK_ON_WHITE:
        return paper_upload(coverage), plan["polarity"]
    return canvas_image(coverage), plan["polarity"]


def usps_upload(ink16: np.ndarray, polarity: str, size: int = USPS_UPLOAD) -> bytes:
    """A 16x16 scan (ink in [0, 1]) upscaled to ``size`` x ``size`` grey, as PNG bytes."""
    big = Image.fromarray(np.ascontiguousarray(ink16, np.float32)).resize((size, size), Image.Resampling.BICUBIC)
    v = np.round(np.clip(np.asarray(big), 0, 1) * 255).astype(np.uint8)
    return png_bytes(v if polarity == WHITE_ON_BLACK else 255 - v)


def render(data: dict, cond: Condition, index: int, seed: int = 0):
    """One digit of ``data`` (its set's, as ``load`` gives) as the Draw page would receive it: (input, polarity)."""
    rng = digit_rng(seed, cond, index)
    if cond.set == "unipen":
        return draw_strokes(data["strokes"][index], cond, rng)
    polarity = BLACK_ON_WHITE if rng.random() < cond.paper else WHITE_ON_BLACK
    return usps_upload(data["image"][index], polarity), polarity


def prepare(data: dict, cond: Condition, indices, seed: int = 0, progress: Callable[[int, int], None] | None = None):
    """Every digit rendered and prepared as ``predict_image`` does: (float32 (n, 28, 28), no_digit (n,), polarity (n,))."""
    n = len(indices)
    x = np.zeros((n, 28, 28), np.float32)
    no_digit = np.zeros(n, bool)
    polarity = np.empty(n, object)
    every = max(1, -(-n // 10))
    for j, i in enumerate(indices):
        image, polarity[j] = render(data, cond, int(i), seed)
        try:
            x[j] = predict_image(image, {})["image"]  # the Draw page's own path, with the models asked below
        except NoDigit:
            no_digit[j] = True
        if progress and ((j + 1) % every == 0 or j + 1 == n):
            progress(j + 1, n)
    return x, no_digit, polarity.astype(str)


def predict(models: dict, x: np.ndarray, tta: bool = True) -> dict[str, np.ndarray]:
    """Each model's answers for prepared digits, in batches: int (n,) per model; ``tta``: as the Draw
    page reads them (each digit and its warped views, averaged), else once."""
    read = (lambda m: m.tta_proba(x, calibrated=False)) if tta else (lambda m: m.predict_proba(x))
    return {name: np.asarray(read(model), np.float64).argmax(1) for name, model in models.items()}


# --- counting ---------------------------------------------------------------------------------------
def _counts(labels: np.ndarray, answered: np.ndarray, pred: np.ndarray, polarity: np.ndarray) -> dict:
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (labels[answered], pred[answered]), 1)
    right = answered & (pred == labels)
    return {
        "correct": int(right.sum()),
        "class_correct": np.bincount(labels[right], minlength=10).tolist(),
        "confusion": confusion.tolist(),
        "polarity_correct": {p: int(right[polarity == p].sum()) for p in POLARITIES},
    }


def score(cond: Condition, labels: np.ndarray, no_digit: np.ndarray, polarity: np.ndarray,
          preds: dict[str, np.ndarray], writer: np.ndarray | None = None) -> dict:
    """The counts for one set and condition: n, no_digit, per class, per polarity, per model (and per writer)."""
    answered = ~no_digit
    entry = {
        "set": cond.set, "condition": cond.name, "title": cond.title,
        "n": len(labels), "no_digit": int(no_digit.sum()),
        "class_n": np.bincount(labels, minlength=10).tolist(),
        "class_no_digit": np.bincount(labels[no_digit], minlength=10).tolist(),
        "polarity": {p: int((polarity == p).sum()) for p in POLARITIES},
        "models": {name: _counts(labels, answered, pred, polarity) for name, pred in preds.items()},
    }
    if writer is not None:
        entry["writers"] = {
            w: {"n": int(m.sum()), "correct": {name: int((answered & (pred == labels))[m].sum())
                                               for name, pred in preds.items()}}
            for w in sorted(set(writer.tolist())) for m in [writer == w]}
    return entry


def writer_spread(entry: dict, model: str, mnist: float, worst: int = 5) -> dict | None:
    """How one model's errors in one entry spread over the writers; None for a set without writers (USPS).

    The pooled accuracy weighs each writer by how many digits they wrote (154 to 928 in UNIPEN);
    the median writer's accuracy says how well a typical person is read. ``near_mnist``: the writers
    read within a point of ``mnist`` (the model's MNIST test accuracy, a fraction). ``worst``: the
    writers read worst, with the share of all digits they wrote and of all errors they got.
    """
    counts = entry.get("writers")
    if not counts:
        return None
    n = np.array([c["n"] for c in counts.values()])
    wrong = n - np.array([c["correct"][model] for c in counts.values()])
    acc = 1 - wrong / n
    low = np.argsort(acc, kind="stable")[:worst]
    return {"writers": len(n), "median": float(np.median(acc)), "near_mnist": int((acc >= mnist - 0.01).sum()),
            "worst": len(low), "worst_digits": float(n[low].sum() / n.sum()),
            "worst_errors": float(wrong[low].sum() / wrong.sum()) if wrong.sum() else 0.0}


def writer_halves(result: dict, model: str, writers: Iterable[str], seed: int = 0) -> dict | None:
    """One model's counts on each half of the writers, UNIPEN's conditions pooled; None without writer counts.

    ``writers``: every writer id in the data (``writers()``), so that a run on a sample splits them
    as a full run does. The halves are ``split_writers(writers, seed)``: "tune" and "check", the split
    the tables of docs/handwriting.md tune on and check on. A change that only fits the writers it was
    tuned on shows as a gap between the two. Returns {half: {"writers", "n", "correct"}}.
    """
    entries = [e for e in result["results"] if e.get("writers")]
    if not entries:
        return None
    out = {}
    for half, members in zip(("tune", "check"), split_writers(writers, seed)):
        counts = [e["writers"][w] for e in entries for w in members if w in e["writers"]]
        out[half] = {"writers": len(members), "n": sum(c["n"] for c in counts),
                     "correct": sum(c["correct"][model] for c in counts)}
    return out


def _gallery_pick(wrong_any: np.ndarray, cond: Condition, seed: int, limit: int) -> np.ndarray:
    pool = np.flatnonzero(wrong_any)
    if len(pool) > limit:
        pool = np.sort(np.random.default_rng([seed, CONDITIONS.index(cond), 13]).choice(pool, limit, replace=False))
    return pool


def gallery_arrays(names, parts: list[dict]) -> dict[str, np.ndarray]:
    """The misread digits of every set and condition as ``beyond.npz``'s arrays (strings as fixed-width text)."""
    def joined(key, dtype, shape=()):
        chunks = [np.asarray(g[key]) for g in parts]
        return np.concatenate(chunks).astype(dtype) if chunks else np.zeros((0, *shape), dtype)

    out = {"models": np.asarray(list(names), str), "image": joined("image", np.uint8, (28, 28)),
           "label": joined("label", np.int64), "pred": joined("pred", np.int64, (len(names),)),
           "index": joined("index", np.int64)}
    for key in ("set", "condition", "writer", "polarity"):
        out[key] = joined(key, str) if parts else np.zeros(0, "U1")
    return out


def measure(models: dict, data_dir=None, limit: int | None = None, seed: int = 0, writers: Iterable[str] | None = None,
            sets: Iterable[str] | None = None, mnist: dict | None = None, gallery: int = GALLERY,
            log: Callable[[str], None] | None = None, tta: bool = True) -> dict:
    """Each model's counts on each set and condition: the content of ``beyond.json`` plus ``"gallery"``.

    ``models``: name -> model (``core.load_models()``). ``limit``: at most this many digits per set,
    balanced across the classes (default: all). ``writers``: UNIPEN writer ids to keep (see
    ``split_writers``); USPS has none, so it is left out unless ``sets`` says otherwise, which is
    refused. ``mnist``: name -> {"mnist_test_accuracy", "mnist_test_size", "mnist_errors"} to
    record beside (``mnist_figures``, read the same way). ``tta``: read as the Draw page does, with
    test-time augmentation (``predict``); False reads each digit once. ``result["gallery"]`` holds the misread digits' arrays (``beyond.npz``'s keys).
    Raises DataMissing or DataError; ValueError for writer ids the data does not hold.
    """
    log = log or (lambda s: None)
    wanted = list(writers) if writers is not None else None
    sets = tuple(sets) if sets is not None else (("unipen",) if wanted is not None else SETS)
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        raise ValueError(f"unknown set {unknown[0]!r}; the sets are {', '.join(SETS)}")
    if wanted is not None and "usps" in sets:
        raise ValueError("USPS has no writer ids, so it cannot be split by writer: leave it out (sets=('unipen',))")
    folder, data = load(data_dir, sets)
    names = list(models)
    started = time.perf_counter()
    results, galleries = [], []
    for s in sets:
        labels = data[s]["label"]
        mask = None
        if wanted is not None:
            known = set(data[s]["writer"].tolist())
            missing = sorted(set(wanted) - known)
            if missing:
                raise ValueError(f"writers not in {DATA_FILES[s]}: {', '.join(missing[:5])}")
            mask = np.isin(data[s]["writer"], list(wanted))
        indices = select(labels, limit, seed, mask)
        for cond in (c for c in CONDITIONS if c.set == s):
            def progress(done, total, cond=cond):
                log(f"  {cond.key}: {done:,} of {total:,} digits rendered and prepared ({done / total:.0%}), "
                    f"{time.perf_counter() - started:.1f} s")

            x, no_digit, polarity = prepare(data[s], cond, indices, seed, progress)
            preds = predict(models, x, tta)
            y = labels[indices]
            writer = data[s]["writer"][indices] if "writer" in data[s] else None
            entry = score(cond, y, no_digit, polarity, preds, writer)
            results.append(entry)
            log(f"  {cond.key}: scored " + ", ".join(
                f"{n} {entry['models'][n]['correct'] / entry['n']:.2%}" for n in names)
                + f"; {entry['no_digit']} without a digit")
            wrong_any = ~no_digit & np.any([preds[n] != y for n in names], axis=0)
            pick = _gallery_pick(wrong_any, cond, seed, gallery)
            galleries.append({
                "image": np.round(x[pick] * 255).astype(np.uint8), "label": y[pick],
                "pred": np.stack([preds[n][pick] for n in names], 1).astype(np.int64).reshape(len(pick), len(names)),
                "set": np.full(len(pick), cond.set), "condition": np.full(len(pick), cond.name),
                "writer": writer[pick] if writer is not None else np.full(len(pick), ""),
                "index": indices[pick].astype(np.int64), "polarity": polarity[pick]})
    files = {DATA_FILES[s]: {"sha256": sha256(folder / DATA_FILES[s]), "digits": len(data[s]["label"]),
                             **({"writers": len(set(data[s]["writer"].tolist()))} if "writer" in data[s] else {}),
                             "as_published": sha256(folder / DATA_FILES[s]) == CHECKSUMS[DATA_FILES[s]]}
             for s in sets}
    return {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "settings": {
            "seed": seed, "limit": limit, "tta": tta, "writers": sorted(set(wanted)) if wanted is not None else None,
            "sets": list(sets), "canvas": CANVAS, "supersample": SUPERSAMPLE, "pen": list(PEN),
            "pen_ratio": list(PEN_RATIO), "margin": MARGIN, "large_jitter": LARGE_JITTER,
            "usps_upload": USPS_UPLOAD, "gallery_per_condition": gallery,
            "conditions": {c.key: {"title": c.title, "heights": list(c.heights) if c.heights else None,
                                   "paper_share": c.paper, "how": c.how} for c in CONDITIONS if c.set in sets},
        },
        "data": files,
        "models": {n: {"title": SPECS[n].title if n in SPECS else n, **((mnist or {}).get(n) or {})} for n in names},
        "results": results,
        "gallery": gallery_arrays(names, galleries),
    }


def mnist_accuracy(metrics: dict, tta: bool = True) -> float:
    """A model's MNIST test accuracy from its metrics.json, read as ``measure(tta=...)`` reads: test-time
    augmented where the model was calibrated for it, else its one reading."""
    return metrics.get("tta_test_accuracy", metrics["test_accuracy"]) if tta else metrics["test_accuracy"]


def mnist_figures(folder=None, names=MODELS, tta: bool = True) -> dict:
    """Each model's MNIST test accuracy, size and errors from its metrics.json, for side-by-side."""
    from core import artifacts

    out = {}
    for n in names:
        m = artifacts.read("metrics", n, folder)
        acc = mnist_accuracy(m, tta)
        out[n] = {"mnist_test_accuracy": acc, "mnist_test_size": m["test_size"],
                  "mnist_errors": round((1 - acc) * m["test_size"])}
    return out


def save(result: dict, out=None) -> Path:
    """``beyond.json`` and ``beyond.npz`` into the artifacts folder ``out``, staged; returns the folder.

    Models measured without their MNIST figures get them from that folder's metrics.json.
    """
    from core import artifacts

    report = {k: v for k, v in result.items() if k != "gallery"}
    folder = artifacts.artifacts_dir(out)
    lacking = [n for n, info in report["models"].items() if "mnist_test_accuracy" not in info]
    if lacking:
        figures = mnist_figures(folder, lacking, report["settings"].get("tta", True))
        report["models"] = {n: {**info, **figures.get(n, {})} for n, info in report["models"].items()}
    with artifacts.staging(folder) as tmp:
        artifacts.FILES["beyond"].check(report)
        artifacts.FILES["beyond_gallery"].check(result["gallery"])
        artifacts.write("beyond", report, tmp)
        artifacts.write("beyond_gallery", result["gallery"], tmp)
    return folder


# --- reading the results -------------------------------------------------------------------------------
def accuracy_rows(result: dict) -> list[dict]:
    """One row per set, condition and model: n, correct, accuracy, 95% Wilson interval, MNIST beside."""
    rows = []
    for r in result["results"]:
        for name, m in r["models"].items():
            lo, hi = wilson(m["correct"], r["n"])
            info = result["models"].get(name, {})
            mnist = info.get("mnist_test_accuracy")
            rows.append({"set": r["set"], "condition": r["condition"], "title": r.get("title", r["condition"]),
                         "model": name, "n": r["n"], "correct": m["correct"], "no_digit": r["no_digit"],
                         "accuracy": m["correct"] / r["n"], "low": lo, "high": hi, "mnist": mnist,
                         "points_lost": None if mnist is None else 100 * (mnist - m["correct"] / r["n"])})
    return rows


def table(result: dict, writers: Iterable[str] | None = None) -> str:
    """The results as a text table: each model's accuracy with its 95% interval, MNIST test accuracy first.

    ``writers`` (every UNIPEN writer id, ``writers()``): add a row for each half of the writers
    (``writer_halves``), both sizes pooled.
    """
    names = list(result["models"])
    width = 30
    head = f"{'set':<8}{'condition':<10}{'n':>7}{'no digit':>10}  " + "".join(
        f"{SPECS[n].short if n in SPECS else n:<{width}}" for n in names)
    lines = [head, "-" * len(head)]
    mnist = []
    for n in names:
        info = result["models"][n]
        if "mnist_test_accuracy" in info:
            k = info["mnist_test_size"] - info["mnist_errors"]
            lo, hi = wilson(k, info["mnist_test_size"])
            mnist.append(f"{info['mnist_test_accuracy']:.2%} [{100 * lo:.1f}, {100 * hi:.1f}]")
        else:
            mnist.append("-")
    size = next((result["models"][n].get("mnist_test_size") for n in names), None)
    lines.append(f"{'MNIST':<8}{'test':<10}{size or 0:>7,}{'':>10}  " + "".join(f"{c:<{width}}" for c in mnist))
    by = {(r["set"], r["condition"], r["model"]): r for r in accuracy_rows(result)}
    for r in result["results"]:
        cells = []
        for n in names:
            row = by[(r["set"], r["condition"], n)]
            lost = f" {-row['points_lost']:+.1f}" if row["points_lost"] is not None else ""
            cells.append(f"{row['accuracy']:.2%} [{100 * row['low']:.1f}, {100 * row['high']:.1f}]{lost}")
        lines.append(f"{SET_TITLES.get(r['set'], r['set']):<8}{r['condition']:<10}{r['n']:>7,}{r['no_digit']:>10,}  "
                     + "".join(f"{c:<{width}}" for c in cells))
    halves = {n: writer_halves(result, n, writers) for n in names} if writers is not None else {}
    if any(halves.values()):
        for half in ("tune", "check"):
            h = {n: halves[n][half] for n in names}
            first = h[names[0]]
            cells = [f"{c['correct'] / c['n']:.2%}" for c in h.values()]
            lines.append(f"{SET_TITLES['unipen']:<8}{half:<10}{first['n']:>7,}{'':>10}  "
                         + "".join(f"{c:<{width}}" for c in cells))
        tune, check = (halves[names[0]][h]["writers"] for h in ("tune", "check"))
        # no interval: pooled, each digit counts twice (once per size), and the two readings are not independent
        lines.append(f"UNIPEN tune / check: {tune} / {check} writers (split_writers, seed 0), both sizes pooled.")
    lines.append("Accuracy [95% Wilson interval] and, after it, points gained (+) or lost (-) against MNIST test.")
    lines.append(reading(result))
    return "\n".join(lines)


def reading(result: dict) -> str:
    """How the models read the digits of ``result``, in a sentence."""
    if result["settings"].get("tta", False):
        return (f"Read as the Draw page reads: each digit and {len(TTA_WARPS) - 1} small warps of it (turned, "
                "slanted), the probabilities averaged (test-time augmentation); MNIST test read the same way.")
    return "Read once per digit, without test-time augmentation; MNIST test read the same way."


# --- the command ---------------------------------------------------------------------------------------
def _limit(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of digits") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} digits: measure at least 1")
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description="Measure the models on handwriting that is not MNIST "
                                "(UNIPEN pen strokes drawn on the canvas, USPS scans uploaded) and save the results "
                                "as beyond.json and beyond.npz in the artifacts folder.")
    p.add_argument("--data-dir", metavar="DIR", help=f"the folder with {' and '.join(DATA_FILES.values())} "
                   f"(default: ${ENV_VAR}, else {DEFAULT_DATA_DIR})")
    p.add_argument("--out", metavar="ARTIFACTS_DIR", help="the artifacts folder whose models are measured and where "
                   "the results go (default: $MNIST_ARTIFACTS, else artifacts/)")
    p.add_argument("--limit", type=_limit, help="at most N digits per set, balanced across the classes (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed for sizes, pens, positions and polarity (default 0)")
    p.add_argument("--one-reading", dest="tta", action="store_false",
                   help="read each digit once, without the Draw page's test-time augmentation")
    args = p.parse_args(argv)

    from core import ArtifactError, artifacts, load_models

    err = lambda s: print(s, file=sys.stderr, flush=True)
    try:
        find_data(args.data_dir)
    except DataMissing as e:
        err(f"error: {e}")
        return 2
    out = artifacts.artifacts_dir(args.out)
    try:
        models = load_models(out)
        mnist = mnist_figures(out, list(models), args.tta)
    except ArtifactError as e:
        err(f"error: cannot load the models: {e}")
        return 2
    err(f"Measuring {', '.join(models)} on handwriting beyond MNIST ("
        f"{'as the Draw page reads, test-time augmented' if args.tta else 'one reading'}, seed {args.seed}"
        f"{f', at most {args.limit:,} digits per set' if args.limit else ', every digit'})...")
    started = time.perf_counter()
    try:
        result = measure(models, args.data_dir, args.limit, args.seed, mnist=mnist, log=err, tta=args.tta)
        folder = save(result, out)
    except (DataMissing, DataError, ArtifactError) as e:
        err(f"error: {e}")
        return 2
    for name, f in result["data"].items():
        if not f["as_published"]:
            err(f"note: {name} differs from the published file (sha256 {f['sha256'][:12]}...).")
    ids = writers(args.data_dir) if any(r.get("writers") for r in result["results"]) else None
    print(table(result, ids))
    print(f"\nWrote {folder / 'beyond.json'} and {folder / 'beyond.npz'} "
          f"({len(result['gallery']['label'])} misread digits) in {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
