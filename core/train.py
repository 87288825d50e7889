"""The training command, ``python -m core.train``: train, evaluate and save the models.

Trains all three models (or those named) on the full training set, evaluates them on
the test set (``core.evaluate``) and writes everything the dashboard shows to
``artifacts/`` (``core.artifacts``). The test set is only ever used after training,
never for choices. Writes are staged: Ctrl-C, SIGTERM or an error leaves the previous
artifacts as they were.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import platform
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np

from core import artifacts
from core.augment import Augment
from core.data import DataError, checksum, load_mnist, splits
from core.evaluate import evaluate
from core.models import MODELS, model_class
from core.settings import with_training

SAMPLE_PER_CLASS = 50


def write_sample(folder: Path, data, seed: int) -> None:
    """A fixed sample of test digits plus full-data summaries, so the app needs no dataset."""
    (x_train, y_train), (x_test, y_test) = data
    rng = np.random.default_rng(seed)
    index = np.concatenate([rng.choice(np.flatnonzero(y_test == d), SAMPLE_PER_CLASS, replace=False) for d in range(10)])
    means = np.stack([x_train[y_train == d].mean(0) / 255 for d in range(10)]).astype(np.float32)
    artifacts.write("sample", {
        "images": x_test[index], "labels": y_test[index], "index": index.astype(np.int32),
        "train_counts": np.bincount(y_train, minlength=10), "test_counts": np.bincount(y_test, minlength=10),
        "class_means": means,
    }, folder)


def versions() -> dict:
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "numpy": np.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}


def settings_for(name: str, epochs=None, seed: int = 0, augment=None, augmentation: Augment | None = None):
    """The model's default settings with the command's choices applied: what the run really uses."""
    changes = {"seed": seed}
    if epochs is not None:
        changes["epochs"] = epochs
    if augment is not None:
        changes["augment"] = augment
    if augmentation is not None:
        changes["augmentation"] = augmentation
    return with_training(model_class(name).Settings(), **changes)


def train(names, epochs=None, subset=None, data_dir=None, out=None, seed=0, augment=None, log=print,
          augmentation: Augment | None = None) -> dict:
    """Train ``names`` and write their artifacts to ``out``; returns {name: metrics}.

    ``epochs`` and ``augment`` (on or off) override each model's settings when given;
    ``augmentation`` says how strong it is (None: ``core.augment.Augment``'s defaults).
    """
    out = artifacts.check_out(artifacts.artifacts_dir(out))  # refuse a wrong --out before an hour of work
    data = load_mnist(data_dir)
    train_split, val, test = splits(data, subset=subset, seed=seed)
    log(f"data: {len(train_split)} training, {len(val)} validation, {len(test)} test images")
    results = {}
    with artifacts.staging(out) as stage:
        manifest = {}
        if (stage / artifacts.MANIFEST).exists():
            try:
                manifest = artifacts.read("manifest", folder=stage)
            except artifacts.ArtifactError:
                manifest = {}  # unreadable or older: rewritten below
        for name in names:
            model = model_class(name)(settings_for(name, epochs, seed, augment, augmentation))
            log(f"\n{name}: {model.num_params():,} parameters, {model.settings}")
            start = time.perf_counter()

            def progress(r):
                log(
                    f"  epoch {r['epoch']:>2}  loss {r['loss']:.4f}  acc {r['accuracy']:.4f}  "
                    f"val_loss {r['val_loss']:.4f}  val_acc {r['val_accuracy']:.4f}  {r['seconds']:.1f}s",
                )

            model.fit(train_split, val, on_epoch=progress)
            train_seconds = time.perf_counter() - start
            result = evaluate(model, test, train_seconds=train_seconds, epochs=len(model.history),
                              train_size=len(train_split))
            folder = stage / name
            if folder.exists():
                shutil.rmtree(folder)  # no stale files from another model format
            model.save(folder)
            for kind in ("metrics", "predictions", "misclassified"):
                artifacts.write(kind, getattr(result, kind), stage, name)
            m = result.metrics
            log(f"  test accuracy {m['test_accuracy']:.4f} ({m['errors']} errors), trained in {train_seconds:.0f}s")
            results[name] = m
            manifest.setdefault("models", {})[name] = {
                "trained": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "subset": subset, "epochs": len(model.history), "seed": seed,
            }
        write_sample(stage, data, seed)
        manifest |= {
            "format_version": artifacts.FORMAT_VERSION,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seed": seed,
            "data_checksum": checksum(data),
            "versions": versions(),
        }
        artifacts.write("manifest", manifest, stage)
    log(f"\nartifacts written to {out}")
    return results


# name: (lowest, highest, metavar, help). Beyond these bounds a digit is no longer reliably itself.
AUGMENT_OPTIONS = {
    "rotate": (0, 90, "DEG", "largest rotation either way, degrees"),
    "shear": (0, 1, "F", "largest slant, as a fraction"),
    "scale": (0, 0.9, "F", "largest relative size change"),
    "shift": (0, 10, "PX", "largest move either way, pixels"),
    "stroke": (0, 1, "P", "share of images whose strokes are thickened or thinned by a pixel"),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), metavar="NAME",
                   help=f"models to train (default: all): {', '.join(MODELS)}")
    p.add_argument("--epochs", type=int, help="epochs per model (default: each model's settings)")
    p.add_argument("--subset", type=int, metavar="N", help="train on N random training images (quick runs)")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MNIST_DIR, else Keras download)")
    p.add_argument("--out", default=None, help=f"artifacts folder (default: {artifacts.DEFAULT_DIR.name}/)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, batch order, augmentation (default 0)")
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                   help="turn data augmentation off")
    a = p.add_argument_group("augmentation strength (each epoch, every image gets a fresh random draw up to these)")
    for field in dataclasses.fields(Augment):
        low, high, unit, text = AUGMENT_OPTIONS[field.name]
        a.add_argument(f"--{field.name}", type=float, default=field.default, metavar=unit,
                       help=f"{text} (default {field.default:g}; {low:g} to {high:g})")
    args = p.parse_args(argv)
    for name, (low, high, _, _) in AUGMENT_OPTIONS.items():
        if not low <= getattr(args, name) <= high:
            p.error(f"--{name} must be between {low:g} and {high:g}, not {getattr(args, name):g}")
    args.augmentation = Augment(**{name: getattr(args, name) for name in AUGMENT_OPTIONS})
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be at least 1")
    if args.subset is not None and args.subset < 100:
        p.error("--subset must be at least 100 images")
    return args


def _terminate(signum, frame):
    raise KeyboardInterrupt  # unwinds through staging(), which discards the partial run


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        train(args.models, args.epochs, args.subset, args.data_dir, args.out, args.seed, args.augment,
              log=lambda s: print(s, flush=True), augmentation=args.augmentation)
    except (DataError, artifacts.ArtifactError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: nothing written, the previous artifacts are untouched", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
