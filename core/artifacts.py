"""The artifacts folder: what training writes and what the dashboard reads.

    artifacts/
      manifest.json              format version, library versions, seed, data checksum, date, per-model run info
      sample.npz                 a bundled sample of test digits, class counts and per-class mean images
      <model>/settings.json      the settings dataclass, with the model's format version
      <model>/history.json       per-epoch loss, accuracy, validation loss and accuracy, learning rate, seconds
      <model>/weights.npz | model.keras
      <model>/metrics.json       test accuracy, per-class accuracy, confusion matrix, parameters, timings
      <model>/predictions.npz    test-set probabilities (float16) and predicted digits
      <model>/misclassified.npz  every test digit the model got wrong: index, image, label, prediction, probabilities

Everything is JSON or ``.npz`` read with ``allow_pickle=False``: no file can run code.
Writes go to a staging folder that replaces the old one only once complete, so an
interrupted or failed run leaves the previous artifacts as they were. Readers raise
``ArtifactError`` naming the file and the command that recreates it. No TensorFlow here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from core.models import MODELS
from core.models.base import ArtifactError, read_json

FORMAT_VERSION = 1
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "artifacts"
MANIFEST = "manifest.json"
SAMPLE = "sample.npz"
RETRAIN = "python -m core.train"

__all__ = ["ArtifactError", "DEFAULT_DIR", "staging", "load_manifest", "load_metrics", "load_history",
           "load_settings", "load_predictions", "load_misclassified", "load_sample", "status"]


def artifacts_dir(path=None) -> Path:
    return Path(path) if path is not None else Path(os.environ.get("MNIST_ARTIFACTS", DEFAULT_DIR))


@contextmanager
def staging(out):
    """Yield a staging copy of ``out``; on success it replaces ``out``, on error it is discarded.

    The copy starts with everything ``out`` already holds, so a run that trains one model
    keeps the others' artifacts. The swap is two renames in the same folder.
    """
    out = Path(out).resolve()
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


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1))


def _npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in keys}
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing. Create it with: {RETRAIN}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        why = "it holds Python objects, which are never loaded" if "pickle" in str(e) else e  # not NumPy's advice
        raise ArtifactError(f"{path} is corrupt ({why}). Recreate it with: {RETRAIN}") from e


def _json(path: Path):
    try:
        return read_json(path)
    except ArtifactError as e:
        raise ArtifactError(f"{e} Recreate it with: {RETRAIN}") from None


def load_manifest(path=None) -> dict:
    m = _json(artifacts_dir(path) / MANIFEST)
    if m.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{artifacts_dir(path) / MANIFEST}: artifacts format {m.get('format_version')}, "
            f"this code reads {FORMAT_VERSION}. Recreate them with: {RETRAIN}"
        )
    return m


def load_metrics(name: str, path=None) -> dict:
    return _json(artifacts_dir(path) / name / "metrics.json")


def load_history(name: str, path=None) -> list[dict]:
    return _json(artifacts_dir(path) / name / "history.json")


def load_settings(name: str, path=None) -> dict:
    return _json(artifacts_dir(path) / name / "settings.json")


def load_predictions(name: str, path=None) -> dict[str, np.ndarray]:
    """probs float16 (10000, 10), pred uint8 (10000,), label uint8 (10000,)."""
    return _npz(artifacts_dir(path) / name / "predictions.npz", ("probs", "pred", "label"))


def load_misclassified(name: str, path=None) -> dict[str, np.ndarray]:
    """index int32 (k,), image uint8 (k, 28, 28), label, pred uint8 (k,), probs float32 (k, 10)."""
    return _npz(artifacts_dir(path) / name / "misclassified.npz", ("index", "image", "label", "pred", "probs"))


def load_sample(path=None) -> dict[str, np.ndarray]:
    """images uint8 (n, 28, 28), labels uint8 (n,), index int32 (n,) into the test set,
    train_counts / test_counts int64 (10,), class_means float32 (10, 28, 28) over the full training set."""
    return _npz(
        artifacts_dir(path) / SAMPLE, ("images", "labels", "index", "train_counts", "test_counts", "class_means")
    )


def status(path=None) -> dict[str, str | None]:
    """For each model, None if its artifacts are all readable, else the message saying what is wrong."""
    out = {}
    for name in MODELS:
        try:
            load_metrics(name, path)
            load_history(name, path)
            load_settings(name, path)
            out[name] = None
        except ArtifactError as e:
            out[name] = str(e)
    return out
