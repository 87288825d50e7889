"""Shared fixtures: the MNIST data (the copy committed in data/mnist/, unless MNIST_DIR says otherwise), a
tiny trained artifacts folder, clean Streamlit caches for AppTests, and Chromium for the real-browser tests."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "dashboard")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    # Keras 3 itself calls np.array(tensor) in a way NumPy 2 deprecates; nothing for this project to change.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="session")
def mnist():
    """The whole dataset. It ships with the repository, so not finding it is a failure, never a skip."""
    from core.data import DataError, load_mnist

    try:
        return load_mnist()
    except DataError as e:
        pytest.fail(f"MNIST could not be loaded: {e}")


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory, mnist):
    """All three models trained for two epochs on 2,000 images, with two seeds each in two worker
    processes (the committed artifacts' path): a complete artifacts folder, fast."""
    from core.train import train

    out = tmp_path_factory.mktemp("artifacts")
    train(list(__import__("core").MODELS), epochs=2, subset=2000, out=out, log=lambda s: None, seeds=2, jobs=2)
    return out


def _fully_trained(folder: Path) -> bool:
    """Whether ``folder`` holds all three models from full-data runs (not a --subset quick run)."""
    from core import MODELS

    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        return len(manifest["models"]) == len(MODELS) and not any(r.get("subset") for r in manifest["models"].values())
    except (OSError, ValueError, KeyError, AttributeError):
        return False


@pytest.fixture(scope="session")
def best_artifacts(request):
    """(folder, fully trained): the committed artifacts when they are fully trained, so answers can be
    checked against the digit drawn; else the tiny ones, where only that answers appear can be checked."""
    committed = ROOT / "artifacts"
    if _fully_trained(committed):
        return committed, True
    return request.getfixturevalue("tiny_artifacts"), False


@pytest.fixture(scope="session")
def committed_models():
    """The committed models in artifacts/ (the ones the dashboard shows); skips without them."""
    from core import ArtifactError, load_models

    try:
        return load_models()
    except ArtifactError as e:
        pytest.skip(f"no committed artifacts ({e}); run python -m core.train")


@pytest.fixture
def fresh_caches():
    """st.cache_data / st.cache_resource are process-wide: no AppTest may see another's artifacts."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def own_artifacts(tiny_artifacts, tmp_path, monkeypatch):
    """A private copy of the tiny artifacts as the app's artifacts folder, to delete or damage files in."""
    import shutil

    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    monkeypatch.setenv("MNIST_ARTIFACTS", str(folder))
    return folder


@pytest.fixture(scope="module")
def noise_images():
    """Five random 28x28 float32 images with an empty band at the top, as real digits have background."""
    import numpy as np

    x = np.random.default_rng(3).random((5, 28, 28), dtype=np.float32)
    x[:, :4] = 0
    return x


@pytest.fixture
def artifacts(tiny_artifacts, monkeypatch):
    """The shared tiny artifacts, read-only, as the app's artifacts folder."""
    monkeypatch.setenv("MNIST_ARTIFACTS", str(tiny_artifacts))
    return Path(tiny_artifacts)


@pytest.fixture(scope="session")
def chromium():
    """Chromium's path for the Playwright tests. Missing: a skip, except in CI (env CI set), where it fails."""
    from tools.browser import CHROMIUM, chromium_available

    if not chromium_available():
        reason = (f"Playwright or {CHROMIUM} missing: apt-get install -y chromium; "
                  "pip install -r requirements-dev.txt")
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this test must run)")
        pytest.skip(reason)
    return CHROMIUM
