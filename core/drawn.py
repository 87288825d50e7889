"""The "drawn digits" benchmark: MNIST test digits redrawn the way people draw on the canvas.

Each digit is redrawn as a crisp pen stroke on a 280x280 canvas: its longer side 25% to
100% of the canvas, anywhere on it, rotated up to 15 degrees either way, with a pen from
half to twice MNIST's typical stroke width, in one of six styles (white on black, black
on white, a coloured pen on white, and the canvas's own RGBA: black or white ink on a
transparent background, or white on opaque black). The set is seeded, so every run and
every model sees the same drawings. Each model's accuracy is measured through the full
pipeline (``core.preprocess.to_mnist``) and through the naive baseline (``naive``), next
to its plain MNIST test accuracy:

    python -m core.drawn [--artifacts DIR] [--n 2000] [--seed 0] [--json OUT] [--detail]
    python -m core.drawn --no-stroke          # the same, with to_mnist's stroke normalisation off
    python -m core.drawn --split val --n 5000 # drawn from the validation images instead
    python -m core.drawn --one-reading        # each digit read once, without test-time augmentation

Progress (digits drawn, seconds so far) goes to stderr about every 10%: all
10,000 test digits take the better part of a minute.

``--split val`` is what training choices (such as the augmentation) are made on, so that
the test set, drawn or plain, is only ever used to report.

``--detail`` (and the JSON) break the to_mnist accuracy down by style, size, pen and angle,
which is what to look at when choosing training augmentation. Pen width is changed by
grey-level dilation or erosion at 4x MNIST's resolution, before the digit is scaled up:
the same strokes as doing it on the canvas, at a fraction of the cost. Canvases are made
and reduced to 28x28 one at a time, so memory stays small for any n.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.pixels import morph
from core.preprocess import STROKE_RATIO, NoDigit, naive, stroke_width, to_mnist

CANVAS = 280
UP = 4  # digits are re-stroked at 4x MNIST's resolution, where a pixel is a quarter stroke
STYLES = ("white_on_black", "black_on_white", "pen_on_white", "canvas_black", "canvas_white", "canvas_opaque")
PEN = np.array([30, 60, 160], np.float32)  # a blue ballpoint for "pen_on_white"


@dataclass(frozen=True)
class Drawing:
    """How one digit was drawn."""

    index: int  # into the source digits: the MNIST test set, or validation with --split val
    size: float  # the digit's longer side / canvas side, before rotation
    stroke: float  # pen width / MNIST's median pen width for a digit of that size
    angle: float  # degrees, counter-clockwise
    style: str


def plan(n: int, seed: int = 0, test_size: int = 10_000) -> list[Drawing]:
    """The seeded choice of digits and how each is drawn (the whole test set if n >= test_size)."""
    rng = np.random.default_rng(seed)
    index = np.arange(test_size) if n >= test_size else np.sort(rng.choice(test_size, n, replace=False))
    k = len(index)
    size = rng.uniform(0.25, 1.0, k)
    stroke = np.exp(rng.uniform(np.log(0.5), np.log(2.0), k))  # as often thinner as thicker
    angle = rng.uniform(-15, 15, k)
    style = rng.integers(0, len(STYLES), k)
    return [Drawing(int(i), float(s), float(w), float(a), STYLES[t]) for i, s, w, a, t in zip(index, size, stroke, angle, style)]


def _pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(a, np.float32))  # mode "F"


def _restroke(digit: np.ndarray, stroke: float) -> np.ndarray:
    """MNIST digit (28, 28) uint8 -> soft ink at 4x with the pen width changed, on a margin."""
    up = np.asarray(_pil(digit / np.float32(255)).resize((28 * UP, 28 * UP), Image.Resampling.BICUBIC))
    up = np.pad(np.clip(up, 0, 1), 4 * UP)
    mask = up > 0.5
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    extent = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    width = stroke_width(up)
    steps = round((stroke * STROKE_RATIO * extent - width) / 2)
    steps = max(steps, -int((width - 3) // 2))  # keep 3 px (3/4 of an MNIST pixel) of every stroke
    return morph(up, 2 * steps)  # core.pixels counts pixels of width: two per step


def render(digit: np.ndarray, d: Drawing, rng: np.random.Generator) -> np.ndarray:
    """The digit drawn on a blank canvas: float32 (CANVAS, CANVAS) pen coverage in [0, 1]."""
    up = _restroke(digit, d.stroke)
    mask = up > 0.5
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    zoom = d.size * CANVAS / (max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)
    big = _pil(up).resize((round(up.shape[1] * zoom), round(up.shape[0] * zoom)), Image.Resampling.BILINEAR)
    big = np.asarray(big.rotate(d.angle, Image.Resampling.BILINEAR, expand=True))
    # A crisp pen with a pixel or two of anti-aliasing, like a browser canvas stroke.
    pen = np.clip((big - 0.4) * 5, 0, 1)
    rows, cols = np.flatnonzero(pen.any(1)), np.flatnonzero(pen.any(0))
    pen = pen[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if max(pen.shape) > CANVAS:  # a full-size digit turned by 15 degrees can overflow: shrink to fit
        f = CANVAS / max(pen.shape)
        size = (min(CANVAS, round(pen.shape[1] * f)), min(CANVAS, round(pen.shape[0] * f)))
        pen = np.asarray(_pil(pen).resize(size, Image.Resampling.BILINEAR))
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    top = rng.integers(0, CANVAS - pen.shape[0] + 1)
    left = rng.integers(0, CANVAS - pen.shape[1] + 1)
    canvas[top : top + pen.shape[0], left : left + pen.shape[1]] = pen
    return canvas


def styled(ink: np.ndarray, style: str) -> np.ndarray:
    """Pen coverage -> the uint8 array a canvas or an upload would give for that style."""
    v = np.round(ink * 255).astype(np.uint8)
    if style == "white_on_black":
        return v
    if style == "black_on_white":
        return 255 - v
    if style == "pen_on_white":
        rgb = 255 * (1 - ink[..., None]) + PEN * ink[..., None]
        return np.round(rgb).astype(np.uint8)
    if style == "canvas_black":  # transparent background, black ink: colour says nothing, alpha all
        return np.dstack([np.zeros_like(v)] * 3 + [v])
    if style == "canvas_white":
        return np.dstack([np.full_like(v, 255)] * 3 + [v])
    if style == "canvas_opaque":
        return np.dstack([v, v, v, np.full_like(v, 255)])
    raise ValueError(f"unknown style {style!r}")


def drawings(x: np.ndarray, plans: list[Drawing], seed: int = 0):
    """Yield (drawing, uint8 canvas array) for each plan; positions come from ``seed``."""
    rng = np.random.default_rng([seed, 1])
    for d in plans:
        yield d, styled(render(x[d.index], d, rng), d.style)


def prepare(x: np.ndarray, plans: list[Drawing], seed: int = 0, normalize_stroke: bool = True, progress=None):
    """Every drawing through ``to_mnist`` and ``naive``: (prepared, naive, no_digit mask).

    ``progress(done, total)``, if given, is called after about every tenth of the drawings and after the last.
    """
    n = len(plans)
    every = max(1, -(-n // 10))  # ceil(n / 10)
    prepared, baseline = np.zeros((n, 28, 28), np.float32), np.zeros((n, 28, 28), np.float32)
    no_digit = np.zeros(n, bool)
    for i, (_, image) in enumerate(drawings(x, plans, seed)):
        try:
            prepared[i] = to_mnist(image, normalize_stroke=normalize_stroke)
        except NoDigit:
            no_digit[i] = True  # counted as wrong: the pipeline gave no answer
        baseline[i] = naive(image)
        if progress and ((i + 1) % every == 0 or i + 1 == n):
            progress(i + 1, n)
    return prepared, baseline, no_digit


def _slices(plans: list[Drawing]) -> dict[str, np.ndarray]:
    """Masks for a per-variation breakdown."""
    size = np.array([d.size for d in plans])
    stroke = np.array([d.stroke for d in plans])
    angle = np.abs([d.angle for d in plans])
    style = np.array([d.style for d in plans])
    out = {f"style {s}": style == s for s in STYLES}
    out |= {"size 25-50%": size < 0.5, "size 50-75%": (size >= 0.5) & (size < 0.75), "size 75-100%": size >= 0.75}
    out |= {"pen thin (x0.5-0.8)": stroke < 0.8, "pen normal (x0.8-1.25)": (stroke >= 0.8) & (stroke <= 1.25),
            "pen thick (x1.25-2)": stroke > 1.25}
    out |= {"angle 0-5": angle < 5, "angle 5-10": (angle >= 5) & (angle < 10), "angle 10-15": angle >= 10}
    return out


def source_digits(data, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The uint8 (n, 28, 28) digits and labels to redraw: the test set, or the validation split."""
    if split == "test":
        return data[1]
    if split != "val":
        raise ValueError(f"split must be 'test' or 'val', not {split!r}")
    from core.data import splits

    _, val, _ = splits(data)
    return np.round(val.x * 255).astype(np.uint8), val.y


def evaluate(models: dict, n: int = 2000, seed: int = 0, normalize_stroke: bool = True, data=None, log=print,
             split: str = "test", tta: bool = True) -> dict:
    """Accuracy of each model on the plain MNIST ``split``, and on it drawn, via to_mnist and via naive.

    ``tta``: every digit, plain or drawn, is read as the Draw page reads it, with test-time
    augmentation (``Model.tta_proba``); False reads each once.

    (The keys say "mnist_test" for either split; ``result["split"]`` says which it was.)
    """
    from core.data import load_mnist

    x_test, y_test = source_digits(data if data is not None else load_mnist(), split)
    plans = plan(n, seed, len(x_test))
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        log(f"  drawn and prepared {done:,} of {total:,} digits ({done / total:.0%}), {time.perf_counter() - start:.1f} s")

    prepared, baseline, no_digit = prepare(x_test, plans, seed, normalize_stroke, progress)
    log(f"Drew and prepared {len(plans):,} digits in {time.perf_counter() - start:.1f} s.")
    labels = y_test[[d.index for d in plans]]
    slices = _slices(plans)
    result = {"n": len(plans), "seed": seed, "split": split, "normalize_stroke": normalize_stroke, "tta": tta,
              "no_digit": int(no_digit.sum()), "models": {}}
    for name, model in models.items():
        read = (lambda x: model.tta_proba(x, calibrated=False)) if tta else model.predict_proba  # noqa: B023
        test_pred = read(x_test.astype(np.float32) / 255).argmax(1)
        right = (read(prepared).argmax(1) == labels) & ~no_digit
        naive_right = read(baseline).argmax(1) == labels
        result["models"][name] = {
            "mnist_test": float(np.mean(test_pred == y_test)),
            "mnist_same_digits": float(np.mean(test_pred[[d.index for d in plans]] == labels)),
            "drawn": float(right.mean()),
            "drawn_naive": float(naive_right.mean()),
            "by": {k: float(right[m].mean()) for k, m in slices.items() if m.any()},
        }
        log(f"  scored {name}, {time.perf_counter() - start:.1f} s")
    return result


def table(result: dict, detail: bool = False) -> str:
    from core.models import SPECS

    split = "validation" if result.get("split") == "val" else "test"
    lines = [
        (f"Drawn digits: {result['n']:,} MNIST {split} digits redrawn on {CANVAS}x{CANVAS} canvases (seed {result['seed']}, "
         f"stroke normalisation {'on' if result['normalize_stroke'] else 'off'}); "
         f"{result['no_digit']} gave no digit. "
         + ("Read as the Draw page reads, with test-time augmentation, plain and drawn alike."
            if result.get("tta") else "Read once per digit, plain and drawn alike.")),
        "",
        f"{'model':<26}{'MNIST ' + result.get('split', 'test'):>11}{'drawn, to_mnist':>19}{'drawn, naive':>14}{'  (same digits plain)':>22}",
    ]
    for name, r in result["models"].items():
        gap = 100 * (r["drawn"] - r["mnist_test"])
        lines.append(f"{SPECS[name].title:<26}{r['mnist_test']:>11.2%}{r['drawn']:>11.2%} ({gap:+.2f})"
                     f"{r['drawn_naive']:>14.2%}{r['mnist_same_digits']:>22.2%}")
    if detail:
        names = list(result["models"])
        lines += ["", f"{'to_mnist accuracy by variation':<30}" + "".join(f"{n:>11}" for n in names)]
        for key in next(iter(result["models"].values()))["by"]:
            lines.append(f"{key:<30}" + "".join(f"{result['models'][n]['by'][key]:>11.2%}" for n in names))
    return "\n".join(lines)


def _count(text: str) -> int:
    """argparse type for --n: a whole number of digits, at least one."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of digits") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} digits: draw at least 1")
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.drawn", description=__doc__.split("\n\n")[0])
    p.add_argument("--artifacts", metavar="DIR", help="trained models (default: artifacts/)")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MNIST_DIR, else the committed data/mnist/)")
    p.add_argument("--n", type=_count, default=2000,
                   help="digits to draw, a seeded subset of the split (default 2000; 10000 = all the test set, 5000 = all validation)")
    p.add_argument("--seed", type=int, default=0, help="seed for the choice of digits and how they are drawn (default 0)")
    p.add_argument("--json", metavar="OUT", help="also write the results, with the per-variation breakdown, as JSON")
    p.add_argument("--detail", action="store_true", help="print accuracy by style, size, pen width and angle")
    p.add_argument("--no-stroke", action="store_true", help="measure with to_mnist's stroke normalisation off")
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="draw test digits (default; for reporting) or validation digits (for making choices)")
    p.add_argument("--one-reading", dest="tta", action="store_false",
                   help="read each digit once, without the Draw page's test-time augmentation")
    args = p.parse_args(argv)

    from core import ArtifactError, load_models
    from core.data import DataError, load_mnist

    try:
        data = load_mnist(args.data_dir)
        available = len(source_digits(data, args.split)[1])
        if args.n > available:  # refused before the models load, not after
            p.error(f"argument --n: the {args.split} split holds {available:,} digits; ask for at most that many")
        models = load_models(args.artifacts)
    except (ArtifactError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = evaluate(models, args.n, args.seed, not args.no_stroke, data, log=lambda s: print(s, file=sys.stderr),
                      split=args.split, tta=args.tta)
    print(table(result, args.detail))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
