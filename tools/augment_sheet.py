"""The augmentation sheet: ``python -m tools.augment_sheet [--out docs/augmentations.png] [--seed S]``.

Every training-time change ``core.augment`` and ``core.styles`` can make, each on its own and all
together, applied to the same few MNIST training digits, as one PNG: the way to check by eye that
every transformed digit still reads as itself. Columns: the digit, its style stroke (0, 1, 7; the
four opened and closed, which training does not use),
elastic distortion, aspect, rotation, slant, size, stroke width, ink tone, then everything at once at the
strengths given (default: the models' strongest settings), and everything at the gentler strength the MLPs'
last epochs use. Pillow only.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.augment import Augment, augment
from core.data import load_mnist, scale
from core.settings import TrainSettings
from core.styles import STYLES, close_four, open_four, reframe, restyle

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "augmentations.png"
DIGITS = (0, 1, 4, 7, 2, 3, 5, 9)  # the styled digits first, then ones often confused with them
ZOOM = 3
GAP = 4
GENTLE = TrainSettings(epochs=1).gentle_strength  # the MLPs' last epochs see the distortions this much weaker
OFF = Augment(rotate=0, shear=0, scale=0, shift=0, stroke=0, styles=0, aspect=0, elastic=0)


def columns(strength: Augment) -> list[tuple[str, Augment | None, int]]:
    """(title, augmentation or None for the style stroke, how many random draws)."""
    one = lambda **k: dataclasses.replace(OFF, **k)
    return [
        ("digit", OFF, 1),
        ("style", None, 2),
        (f"elastic {strength.elastic or 2:g}px", one(elastic=strength.elastic or 2.0), 3),
        (f"aspect {strength.aspect or 0.3:g}", one(aspect=strength.aspect or 0.3), 2),
        (f"rotate {strength.rotate:g}", one(rotate=strength.rotate), 2),
        (f"slant {strength.shear:g}", one(shear=strength.shear), 2),
        (f"size {strength.scale:g}", one(scale=strength.scale), 2),
        ("stroke", one(stroke=1.0), 2),
        (f"ink tone {strength.ink_gamma or 0.7:g}", one(ink_gamma=strength.ink_gamma or 0.7), 2),
        ("all together", strength, 4),
        (f"all x{GENTLE:g}: last epochs", strength.scaled(GENTLE), 3),
    ]


def sheet(x: np.ndarray, y: np.ndarray, strength: Augment, seed: int = 0) -> Image.Image:
    """The sheet as a greyscale image: one row per digit in ``DIGITS``, the columns of ``columns``."""
    picks = [int(np.flatnonzero(y == d)[k]) for d in DIGITS for k in (0, 1)]
    cols = columns(strength)
    cell = 28 * ZOOM
    head = 16
    width = sum(n for _, _, n in cols) * (cell + 1) + GAP * len(cols)
    height = head + len(picks) * (cell + 1)
    out = Image.new("L", (width, height), 40)
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default()
    left = 0
    for c, (title, aug, n) in enumerate(cols):
        draw.text((left + 2, 2), title, fill=230, font=font)
        for row, i in enumerate(picks):
            rng = np.random.default_rng([seed, c, row])
            for k in range(n):
                if aug is None and int(y[i]) == 4:  # measured, not used in training: opened, then closed
                    img = reframe((open_four, close_four)[k](x[i], rng))
                elif aug is None:
                    img = restyle(x[i], y[i], rng) if int(y[i]) in STYLES else np.zeros_like(x[i])
                elif aug == OFF:
                    img = x[i]
                else:
                    img = augment(x[i][None], rng, aug, threads=1)[0]
                tile = Image.fromarray(np.round(img * 255).astype(np.uint8)).resize((cell, cell), Image.NEAREST)
                out.paste(tile, (left + k * (cell + 1), head + row * (cell + 1)))
        left += n * (cell + 1) + GAP
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.augment_sheet", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="PNG to write (default docs/augmentations.png)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: the project's)")
    strengths = [f for f in dataclasses.fields(Augment) if isinstance(f.default, float)]
    for f in strengths:
        p.add_argument(f"--{f.name}", type=float, default=None, help=f"strength for 'all together' (default {f.default:g})")
    args = p.parse_args(argv)
    strength = Augment(**{f.name: getattr(args, f.name) for f in strengths if getattr(args, f.name) is not None})
    (x, y), _ = load_mnist(args.data_dir)
    x, y = scale(x[:2000]), y[:2000]
    styled = sheet(x, y, strength, args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    styled.save(args.out, optimize=True)
    print(f"wrote {args.out}: {styled.width}x{styled.height}, augmentation for 'all together': {strength}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
