"""Fit the saved models' temperatures again, without training: ``python -m core.calibrate``.

    python -m core.calibrate [--models NAME ...] [--artifacts DIR] [--data-dir DIR]

Each model's two temperatures (``Model.calibrate``: one reading, and the Draw page's test-time
augmented one) are fitted on the validation digits, never the test set, and written into its
``settings.json``; its ``metrics.json`` gets the test set's calibration figures and the Draw page
reading's test accuracy (``core.evaluate.test_calibration``). Weights, history and predictions
are left as they are. ``core.train`` does the same after training; this is for models trained
before a reading or its temperature changed. Writes are staged like training's: an error or
Ctrl-C leaves the artifacts as they were.
"""

from __future__ import annotations

import argparse
import json
import sys

from core import artifacts
from core.artifacts import ArtifactError
from core.data import DataError, load_mnist, splits
from core.evaluate import test_calibration
from core.models import MODELS
from core.models.base import SETTINGS_FILE


def recalibrate(names, out=None, data_dir=None, log=print) -> dict[str, dict]:
    """Fit and save the temperatures of the models ``names`` in ``out``; returns each one's calibration."""
    folder = artifacts.artifacts_dir(out)
    manifest = artifacts.read("manifest", folder=folder)
    data = load_mnist(data_dir)
    done = {}
    with artifacts.staging(folder) as stage:
        for name in names:
            run = manifest.get("models", {}).get(name, {})  # the same validation digits as its training run
            _, val, test = splits(data, subset=run.get("subset"), seed=run.get("seed", manifest.get("seed", 0)))
            model = artifacts.load_model(name, stage)
            calibration = model.calibrate(val)
            settings = stage / name / SETTINGS_FILE
            meta = json.loads(settings.read_text())
            meta["temperature"], meta["tta_temperature"] = model.temperature, model.tta_temperature
            settings.write_text(json.dumps(meta, indent=2))
            metrics = artifacts.read("metrics", name, stage)
            metrics |= test_calibration(model, test, model.predict_proba(test.x), calibration)
            artifacts.write("metrics", metrics, stage, name)
            done[name] = metrics["calibration"]
            log(f"{name}: temperature {model.temperature:.2f}, test-time augmented {model.tta_temperature:.2f} "
                f"(validation ECE {calibration['val_ece_tta_before']:.4f} -> {calibration['val_ece_tta_after']:.4f}); "
                f"MNIST test {metrics['test_accuracy']:.2%} in one reading, {metrics['tta_test_accuracy']:.2%} "
                "test-time augmented")
    return done


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), metavar="NAME",
                   help=f"which models (default: all: {', '.join(MODELS)})")
    p.add_argument("--artifacts", metavar="DIR", help="trained models (default: artifacts/)")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MNIST_DIR, else the committed data)")
    args = p.parse_args(argv)
    try:
        recalibrate(args.models, args.artifacts, args.data_dir)
    except (ArtifactError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the artifacts are as they were", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
