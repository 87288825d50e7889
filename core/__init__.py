"""Train, evaluate and load three MNIST digit classifiers that share one interface.

    from core import load_models
    models = load_models()                  # from artifacts/, or load_models(path)
    p = models["lenet"].predict_proba(x)    # x float32 (n, 28, 28) in [0, 1] -> (n, 10)

This package never imports Streamlit, and imports TensorFlow only when a Keras model is used.
"""

from __future__ import annotations

from core.models import MODELS, TITLES, model_class
from core.models.base import ArtifactError


def load_model(name: str, path=None):
    """One trained model from ``path`` (default ``artifacts/``); raises ArtifactError if unusable."""
    from core.artifacts import artifacts_dir

    return model_class(name).load(artifacts_dir(path) / name)


def load_models(path=None, names=None) -> dict:
    """All three trained models (or ``names``), in display order."""
    return {name: load_model(name, path) for name in (names or MODELS)}


__all__ = ["ArtifactError", "MODELS", "TITLES", "load_model", "load_models", "model_class"]
