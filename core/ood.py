"""Does a prepared digit look like one handwritten digit at all? The models answer anything with a digit,
often confidently (noise got 92% "8"), so before their answer is shown the input is compared with the
digits they learnt from.

    from core.ood import unlike_a_digit
    reason = unlike_a_digit(to_mnist(image))   # None, or a sentence saying why it does not look like a digit

The check looks at the 28x28 image ``core.preprocess.to_mnist`` made, with no model: four figures that
MNIST's digits keep in a narrow range once prepared (how much ink, how much of it half-tone rather than
stroke, how many rows and columns it spans), and how far this image's four lie from MNIST's, counting
how they vary together (the squared Mahalanobis distance). Beyond ``LIMIT``, the distance of the
farthest 0.1% of MNIST's 55,000 training digits, it is "not a single digit". The figures' mean and
covariance are constants measured by ``python -m core.ood --calibrate``; ``python -m tools.ood``
measures false alarms on real digits and what it catches. NumPy only.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

FEATURES = ("ink", "half-tone share", "rows spanned", "columns spanned")
# Measured on MNIST's 55,000 training digits through to_mnist (python -m core.ood --calibrate).
MEAN = np.array([0.126303, 0.121957, 19.714047, 14.847441])
COVARIANCE = np.array([
    [0.000982, 0.000736, -0.001543, 0.087926],
    [0.000736, 0.000782, -0.002125, 0.077981],
    [-0.001543, -0.002125, 1.608268, -1.937814],
    [0.087926, 0.077981, -1.937814, 15.972579],
])
LIMIT = 49.6  # the 99.9th percentile of the training digits' distances: 0.1% of them lie beyond it
QUANTILE = 99.9
_INVERSE = np.linalg.inv(COVARIANCE)

INK = 0.3  # what counts as ink when counting rows and columns, as in core.preprocess
STROKE = (0.1, 0.9)  # strictly between these, a pixel is half-tone: the edge of a stroke, or shading

NOT_A_DIGIT = "This does not look like a single digit"


def features(x) -> np.ndarray:
    """(n, 4) or (4,) figures of prepared digits (float (n, 28, 28) or (28, 28) in [0, 1]), as ``FEATURES``."""
    x = np.asarray(x, np.float32)
    one = x.ndim == 2
    x = x[None] if one else x
    f = np.stack([x.mean((1, 2)), ((x > STROKE[0]) & (x < STROKE[1])).mean((1, 2)),
                  (x.max(2) > INK).sum(1), (x.max(1) > INK).sum(1)], 1).astype(np.float64)
    return f[0] if one else f


def distance(x) -> np.ndarray | float:
    """Squared Mahalanobis distance of prepared digits' figures from MNIST's (a float for one digit)."""
    d = features(x) - MEAN
    out = np.einsum("...j,jk,...k->...", d, _INVERSE, d)
    return float(out) if np.ndim(out) == 0 else out


def unlike_a_digit(x) -> str | None:
    """None if the prepared digit ``x`` (28x28) is within what MNIST's digits look like, else a sentence for
    the person at the screen saying why it is not, starting with ``NOT_A_DIGIT``."""
    if distance(x) <= LIMIT:
        return None
    ink, halftone, rows, cols = (features(x) - MEAN) / np.sqrt(np.diag(COVARIANCE))
    if max(ink, halftone) > 3:
        why = ("it is mostly filled areas, texture or shading rather than pen strokes: noise, a photo or a "
               "smudge? Draw one digit with a pen, or crop the photo to the digit.")
    elif rows < -3 and cols > -1:
        why = "it is much wider than a digit: several digits, or a word? Draw or crop to one digit."
    else:
        why = "its shape is unlike any of MNIST's handwritten digits. Draw one digit from 0 to 9, large and in the middle."
    return f"{NOT_A_DIGIT}: {why} The models' guesses are shown anyway, but mean little here."


def calibrate(x) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, covariance, limit) from prepared digits ``x`` (n, 28, 28): what the constants above hold."""
    f = features(x)
    mean, cov = f.mean(0), np.cov(f.T)
    d = f - mean
    return mean, cov, float(np.percentile(np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d), QUANTILE))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.ood", description="The not-a-digit check's constants.")
    p.add_argument("--calibrate", action="store_true", help="measure them again on MNIST's training digits (about "
                                                            "a minute) and print them")
    p.add_argument("--data-dir", help="MNIST's folder (default: as core.data finds it)")
    args = p.parse_args(argv)
    if not args.calibrate:
        print(f"mean {MEAN.tolist()}\ncovariance {COVARIANCE.tolist()}\nlimit {LIMIT} ({QUANTILE}th percentile)")
        return 0
    from core.data import load_mnist
    from core.preprocess import NoDigit, to_mnist

    (x, _), _ = load_mnist(args.data_dir)
    prepared = []
    for image in x[:55_000]:  # the training split: the validation images stay unseen
        try:
            prepared.append(to_mnist(image))
        except NoDigit:
            continue
    mean, cov, limit = calibrate(np.stack(prepared))
    np.set_printoptions(precision=6, suppress=True)
    print(f"MEAN = np.array({mean.round(6).tolist()})\nCOVARIANCE = np.array({cov.round(6).tolist()})\n"
          f"LIMIT = {limit:.1f}  # from {len(prepared):,} digits", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
