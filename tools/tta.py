"""What test-time augmentation costs and gives: ``python -m tools.tta [--repeat N] [--limit N] [--artifacts DIR]``.

For each committed model: the model time to read one prepared digit once (``tta=False``) and as
the Draw page does, with ``Model.tta_proba`` (making the digit's ``TTA_WARPS`` copies, then reading
all in one batch), p50 and p95 over ``--repeat`` digits; and MNIST test accuracy both ways on
``--limit`` test digits. The development sets' figures come from ``core.beyond``'s prepared
digits (see the README). Timings are wall-clock on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from core import load_models
from core.data import load_mnist, scale
from core.pixels import TTA_WARPS


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.tta", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=300, help="digits timed per model and way (default 300)")
    p.add_argument("--limit", type=int, default=10000, help="MNIST test digits for the accuracy (default all)")
    p.add_argument("--artifacts", default=None)
    args = p.parse_args(argv)
    models = load_models(args.artifacts)
    _, (x, y) = load_mnist()
    x, y = scale(x[: args.limit]), y[: args.limit]
    print(f"TTA: {len(TTA_WARPS)} views (rotation, slant, size): {TTA_WARPS}")
    print("| model | one image p50 / p95 ms | with TTA p50 / p95 ms | MNIST test | with TTA |")
    print("|---|---|---|---|---|")
    total = np.zeros(2)
    for name, model in models.items():
        times = {False: [], True: []}
        for i in range(args.repeat + 10):
            for tta in (False, True):
                one = x[i % len(x)][None]
                start = time.perf_counter()  # the warps are part of TTA's cost
                model.tta_proba(one) if tta else model.calibrated_proba(one)
                if i >= 10:  # the first calls warm caches and Keras's graph
                    times[tta].append(1000 * (time.perf_counter() - start))
        plain = model.predict_proba(x).argmax(1)
        avg = model.tta_proba(x).argmax(1)
        q = {t: np.percentile(v, [50, 95]) for t, v in times.items()}
        total += [q[False][0], q[True][0]]
        print(f"| {name} | {q[False][0]:.2f} / {q[False][1]:.2f} | {q[True][0]:.2f} / {q[True][1]:.2f} | "
              f"{(plain == y).mean():.2%} | {(avg == y).mean():.2%} |")
    print(f"| three models, sum of p50 | {total[0]:.2f} | {total[1]:.2f} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
