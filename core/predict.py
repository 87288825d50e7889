"""Read a digit from an image with all three models: ``predict_image`` and ``python -m core.predict``.

    from core import load_models
    from core.predict import predict_image
    result = predict_image(canvas_rgba_or_bytes_or_path, load_models())
    result["image"]                                # float32 (28, 28): what the models saw
    result["predictions"]["lenet"]["digit"]        # int; ["probs"] is float (10,)
    result["unusual"]                              # None, or why it does not look like a single digit
    predict_image(image, models, tta=False)        # one reading, without test-time augmentation

    python -m core.predict IMAGE [IMAGE ...] [--json] [--artifacts DIR] [--one-reading]

The command prints each model's digit and confidence for every image, or with ``--json``
one JSON object per line, read as the Draw page reads (``--one-reading``: each model once), and says
when an image does not look like a single digit
(``core.ood``: noise, a photo, several digits), which the models would read as a digit anyway. A file that cannot be read or holds no digit gets an error of
its own and never stops the others; the exit status is 1 if any image failed, 2 if the
models could not be loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from core.ood import unlike_a_digit
from core.pixels import TTA_WARPS, views
from core.preprocess import ImageError, NoDigit, read_image, to_mnist

__all__ = ["TTA_WARPS", "agreement", "main", "predict_image", "tta_views"]

def tta_views(x: np.ndarray, warps=TTA_WARPS) -> np.ndarray:
    """One prepared digit (28, 28) -> (len(warps), 28, 28): itself and its warped copies, about the centre."""
    return views(np.asarray(x, np.float32)[None], warps)[0]


def predict_image(image, models: dict, calibrated: bool = True, tta: bool = True) -> dict:
    """Preprocess one image and ask every model; raises NoDigit or ImageError.

    ``calibrated``: probabilities after each model's temperature scaling (fitted on validation
    digits), so that "90% sure" is right about 90% of the time; a model saved without a
    temperature answers with its raw probabilities.

    ``image`` is an array (anything ``to_mnist`` takes) or a file as bytes or a path.
    Returns {"image": float32 (28, 28), "predictions": {name: {"digit": int, "probs": (10,)}},
    "unusual": None or a sentence} with the predictions in the models' order; "unusual" says why the
    image does not look like a single digit (``core.ood``), when it does not. Keeps no state, so
    concurrent sessions may share the models.

    ``tta`` (test-time augmentation, on by default): each model reads the digit and its ``TTA_WARPS``
    copies in one batch and answers with the mean of the probabilities, tempered by the temperature
    fitted to that reading (``Model.tta_proba``); "image" stays the unwarped digit. It reads people's
    drawings a little better, and costs about 1 ms for all three models (docs/handwriting.md).
    ``tta=False`` reads the digit once, as the Results page's figures do.
    """
    if isinstance(image, (bytes, bytearray, memoryview, str, os.PathLike)):
        image = read_image(image)
    x = to_mnist(image)
    predictions = {}
    v = views(x[None]) if tta else None  # made once, read by every model
    for name, model in models.items():
        if tta:
            probs = model.read_views(v, calibrated)[0]
        else:
            probs = (model.calibrated_proba if calibrated else model.predict_proba)(x[None])[0]
        probs = np.asarray(probs, np.float64)
        predictions[name] = {"digit": int(probs.argmax()), "probs": probs}
    return {"image": x, "predictions": predictions, "unusual": unlike_a_digit(x)}


def agreement(result: dict) -> int | None:
    """The digit every model chose, or None if they disagree."""
    digits = {p["digit"] for p in result["predictions"].values()}
    return digits.pop() if len(digits) == 1 else None


def _as_json(path: str, result: dict) -> dict:
    return {"path": path, "predictions": {
        name: {"digit": p["digit"], "probs": [round(float(v), 6) for v in p["probs"]]}
        for name, p in result["predictions"].items()}, "unusual": result.get("unusual")}


def _as_text(path: str, result: dict) -> str:
    from core.models import SPECS

    lines = [f"{path}:"]
    for name, p in result["predictions"].items():
        title = SPECS[name].title if name in SPECS else name
        lines.append(f"  {title:<26} {p['digit']}  ({p['probs'][p['digit']]:.1%})")
    agreed = agreement(result)
    if len(result["predictions"]) == 1:
        lines.append(f"  the one model says: {agreed}")
    else:
        lines.append(f"  all models agree: {agreed}" if agreed is not None else "  the models disagree")
    if result.get("unusual"):
        lines.append(f"  {result['unusual']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.predict", description="Read the digit in each image with all three models.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, GIF, BMP, WebP or TIFF files, any size or polarity")
    p.add_argument("--json", action="store_true", help='one JSON object per line: {"path", "predictions", "unusual"} or '
                                                       '{"path", "error"}')
    p.add_argument("--artifacts", metavar="DIR", help="trained models (default: artifacts/)")
    p.add_argument("--one-reading", dest="tta", action="store_false",
                   help="each model reads the image once, without the Draw page's test-time augmentation")
    args = p.parse_args(argv)

    from core import ArtifactError, load_models

    try:
        models = load_models(args.artifacts)
    except ArtifactError as e:
        print(f"error: cannot load the models: {e}", file=sys.stderr)
        return 2
    failed = 0
    for path in args.images:
        try:
            result = predict_image(path, models, tta=args.tta)
        except (ImageError, NoDigit) as e:
            failed += 1
            if args.json:
                print(json.dumps({"path": path, "error": str(e)}), flush=True)
            else:
                print(f"{path}: {e}", file=sys.stderr, flush=True)
            continue
        print(json.dumps(_as_json(path, result)) if args.json else _as_text(path, result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
