"""Shared fixtures: where MNIST is, the data itself, and a tiny trained artifacts folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "dashboard")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests and CI read MNIST from the shared folder beside the checkout unless told otherwise.
if not os.environ.get("MNIST_DIR") and (ROOT.parent / "shared/data/mnist").is_dir():
    os.environ["MNIST_DIR"] = str(ROOT.parent / "shared/data/mnist")


@pytest.fixture(scope="session")
def mnist():
    from core.data import DataError, load_mnist

    try:
        return load_mnist()
    except DataError as e:
        pytest.skip(f"MNIST not available: {e}")


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory, mnist):
    """All three models trained for two epochs on 2,000 images: a complete artifacts folder, fast."""
    from core.train import train

    out = tmp_path_factory.mktemp("artifacts")
    train(list(__import__("core").MODELS), epochs=2, subset=2000, out=out, log=lambda s: None)
    return out
