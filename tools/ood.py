"""How well does the not-a-digit check (core.ood) do? False alarms on real digits, and what it catches.

    python -m tools.ood [--n 3000] [--handwriting /work/shared/data/handwriting] [--seed 0] [--json OUT]

Every input goes through ``core.preprocess.to_mnist``, as the Draw page's would, then ``core.ood``:

- real digits, where every alarm is a false one: MNIST's 10,000 test digits; ``--n`` of them redrawn as
  canvas drawings (``core.drawn``) and up to 2,000 as photos of ink on shaded paper; with ``--handwriting``, the UNIPEN pen trajectories rendered as the
  canvas would draw them and the USPS scans enlarged as an upload would be (see that folder's README);
- what it should catch: noise (uniform colour and grey, Gaussian, sparse dots, binary), shaded photo-like
  scenes (smooth random fields, lit gradients, out-of-focus blobs, a shadow across paper) and two MNIST
  digits side by side.

Prints the share flagged in each set (and per kind), and how many inputs to_mnist refused outright.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from core.ood import LIMIT, distance
from core.preprocess import ImageError, NoDigit, to_mnist

NOISE = ("colour noise", "grey noise", "gaussian noise", "sparse dots", "binary noise")
PHOTOS = ("smooth field", "lit gradient", "blurred blobs", "shadow on paper")


def noise(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out = []
    for i in range(n):
        h, w = int(rng.integers(100, 400)), int(rng.integers(100, 400))
        kind = i % len(NOISE)
        if kind == 0:
            a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        elif kind == 1:
            a = rng.integers(0, 256, (h, w), dtype=np.uint8)
        elif kind == 2:
            a = np.clip(128 + rng.normal(0, 40, (h, w)), 0, 255).astype(np.uint8)
        elif kind == 3:
            a = np.where(rng.random((h, w)) < 0.05, 255, 0).astype(np.uint8)
        else:
            a = (rng.random((280, 280)) < 0.5).astype(np.uint8) * 255
        out.append(a)
    return out


def photos(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Shaded scenes with no digit in them, with sensor grain and a colour cast."""
    out = []
    for i in range(n):
        h, w = int(rng.integers(240, 480)), int(rng.integers(240, 640))
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        kind = i % len(PHOTOS)
        if kind == 0:
            small = (rng.random((int(rng.integers(3, 9)),) * 2) * 255).astype(np.uint8)
            a = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC), float)
        elif kind == 1:
            angle = rng.uniform(0, np.pi)
            a = 80 + 120 * (np.cos(angle) * xx + np.sin(angle) * yy) - 60 * ((xx - 0.5) ** 2 + (yy - 0.4) ** 2)
        elif kind == 2:
            im = Image.new("L", (w, h), int(rng.integers(150, 230)))
            draw = ImageDraw.Draw(im)
            for _ in range(int(rng.integers(2, 6))):
                x0, y0, r = rng.integers(0, w), rng.integers(0, h), rng.integers(20, 120)
                draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=int(rng.integers(0, 120)))
            a = np.asarray(im.filter(ImageFilter.GaussianBlur(float(rng.uniform(5, 25)))), float)
        else:
            a = np.full((h, w), float(rng.uniform(180, 240)))
            edge = rng.uniform(0.2, 0.8) * w + yy * max(h, w) * rng.uniform(-0.5, 0.5)
            a[np.arange(w)[None, :] > edge] *= rng.uniform(0.3, 0.7)
            a = np.asarray(Image.fromarray(a.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(8)), float)
        a = a + rng.normal(0, rng.uniform(2, 10), a.shape)
        out.append(np.clip(a[..., None] * rng.uniform(0.85, 1.15, 3), 0, 255).astype(np.uint8))
    return out


def on_paper(x: np.ndarray, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """MNIST digits as photos of ink on paper: dark ink, 40-70% of the frame, on evenly lit or gently shaded
    paper (a light gradient, up to a fifth darker across the frame), with a colour cast and grain."""
    out = []
    for i in rng.choice(len(x), n, replace=False):
        h, w = int(rng.integers(200, 400)), int(rng.integers(200, 400))
        side = int(rng.uniform(0.4, 0.7) * min(h, w))
        ink = np.zeros((h, w))
        top, left = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
        digit = np.asarray(Image.fromarray(x[i]).resize((side, side), Image.Resampling.BICUBIC), float) / 255
        ink[top:top + side, left:left + side] = digit.clip(0, 1)
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        angle = rng.uniform(0, 2 * np.pi)
        paper = rng.uniform(190, 240) * (1 - rng.uniform(0, 0.2) * (np.cos(angle) * xx + np.sin(angle) * yy))
        a = paper * (1 - 0.85 * ink) + rng.normal(0, rng.uniform(1, 6), (h, w))
        out.append(np.clip(a[..., None] * rng.uniform(0.9, 1.1, 3), 0, 255).astype(np.uint8))
    return out


def two_digits(x: np.ndarray, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    return [np.concatenate([x[rng.integers(len(x))], x[rng.integers(len(x))]], 1) for _ in range(n)]


def unipen(path: Path, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Pen trajectories drawn as the canvas draws: white round-capped strokes of 8-40 px on 280x280 black."""
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            if len(out) >= n:
                break
            strokes = [np.asarray(s, float) for s in json.loads(line)["strokes"] if len(s)]
            points = np.concatenate(strokes)
            lo, hi = points.min(0), points.max(0)
            scale = rng.uniform(0.4, 0.85) * 280 / (max(hi - lo) or 1.0)
            offset = (280 - (hi - lo) * scale) / 2 + rng.uniform(-20, 20, 2)
            im = Image.new("RGB", (280, 280))
            draw, pen = ImageDraw.Draw(im), int(rng.integers(8, 41))
            for s in strokes:
                p = [tuple(q) for q in (s - lo) * scale + offset]
                draw.line(p * (2 if len(p) == 1 else 1), fill="white", width=pen, joint="curve")
                for cx, cy in (p[0], p[-1]):
                    draw.ellipse([cx - pen / 2, cy - pen / 2, cx + pen / 2, cy + pen / 2], fill="white")
            out.append(np.asarray(im))
    return out


def usps(path: Path, n: int) -> list[np.ndarray]:
    """16x16 scans, ink white, enlarged to 160x160 as an upload would be."""
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            if len(out) >= n:
                break
            a = ((np.asarray(line.split()[1:], float).reshape(16, 16) + 1) * 127.5).clip(0, 255).astype(np.uint8)
            out.append(np.asarray(Image.fromarray(a).resize((160, 160), Image.Resampling.BILINEAR)))
    return out


def outcome(images) -> np.ndarray:
    """For each image: 1 flagged, 0 taken for a digit, -1 refused by to_mnist (blank, a dot)."""
    out = np.full(len(images), -1)
    for i, im in enumerate(images):
        try:
            out[i] = distance(to_mnist(im)) > LIMIT
        except (NoDigit, ImageError):
            continue
    return out


def measure(n: int, handwriting: Path | None, seed: int = 0, log=print) -> dict:
    from core import drawn
    from core.data import load_mnist

    rng = np.random.default_rng(seed)
    _, (x_test, _) = load_mnist()
    sets: dict[str, tuple[list | np.ndarray, tuple[str, ...] | None]] = {"MNIST test": (list(x_test), None)}
    prepared, _, no_digit = drawn.prepare(x_test, drawn.plan(n, seed), seed)
    sets["MNIST drawn on the canvas"] = (None, None)
    results = {"MNIST drawn on the canvas": np.where(no_digit, -1, distance(prepared) > LIMIT)}
    sets["MNIST photographed on paper"] = (on_paper(x_test, rng, min(n, 2000)), None)
    if handwriting is not None:
        sets["UNIPEN (pen, canvas-like)"] = (unipen(handwriting / "unipen-dev.jsonl.gz", rng, n), None)
        sets["USPS (scans, upload-like)"] = (usps(handwriting / "usps-train.gz", n), None)
    sets["noise"] = (noise(rng, 500), NOISE)
    sets["shaded photos"] = (photos(rng, 400), PHOTOS)
    sets["two digits side by side"] = (two_digits(x_test, rng, 500), None)
    out = {}
    for name, (images, kinds) in sets.items():
        got = results[name] if images is None else outcome(images)
        row = {"n": len(got), "flagged_percent": 100 * float((got == 1).mean()), "refused": int((got == -1).sum())}
        if kinds:
            row["by_kind"] = {k: 100 * float((got[i::len(kinds)] == 1).mean()) for i, k in enumerate(kinds)}
        out[name] = row
        log(f"{name:28} {row['n']:>6,}  flagged {row['flagged_percent']:6.2f}%  (refused by to_mnist: {row['refused']})"
            + "".join(f"\n{'':30}{k}: {v:.0f}%" for k, v in row.get("by_kind", {}).items()))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.ood", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=3000, help="drawn, UNIPEN and USPS digits (default 3000)")
    p.add_argument("--handwriting", type=Path, help="the folder of unipen-dev.jsonl.gz and usps-train.gz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, metavar="OUT")
    args = p.parse_args(argv)
    out = measure(args.n, args.handwriting, args.seed)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
