"""Cached access to what the pages read: artifact files (``core.artifacts``), the trained models and
the MNIST data. Each artifact is read and checked once per version of its file (its modification
time is part of the key), each model loaded once per version of its folder; readers raise only
``ArtifactError``. Nothing here imports TensorFlow: the models are read in NumPy.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from core import artifacts


def folder() -> Path:
    return artifacts.artifacts_dir()


def _stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


@st.cache_data(show_spinner=False, max_entries=64)
def _read(kind: str, name: str | None, where: str, stamp: int | None):
    return artifacts.read(kind, name, where)


def read(kind: str, name: str | None = None):
    """One artifact file's checked content (kinds as in ``core.artifacts.FILES``); raises ArtifactError."""
    return _read(kind, name, str(folder()), _stamp(artifacts.path(kind, name)))


@st.cache_resource(show_spinner=False, max_entries=8)
def _model(name: str, where: str, stamp: tuple):
    return artifacts.load_model(name, where)


def model(name: str):
    """A committed model, loaded once per version of its files; raises ArtifactError."""
    f = folder() / name
    stamp = tuple(_stamp(p) for p in sorted(f.glob("*"))) if f.is_dir() else ()
    return _model(name, str(folder()), stamp)


@st.cache_resource(show_spinner="Reading the MNIST dataset…", max_entries=2)
def _full_data(mnist_dir: str | None, stamp):
    """Found the way ``core.data`` finds it, without its download (and so without importing Keras)."""
    from core.data import find_mnist

    return find_mnist(mnist_dir, download=False)


def full_data():
    """``((x_train, y_train), (x_test, y_test))`` as uint8, or None when the dataset is not here."""
    from core.data import keras_cache

    mnist_dir = os.environ.get("MNIST_DIR") or None
    return _full_data(mnist_dir, None if mnist_dir else _stamp(keras_cache()))
