"""Train, evaluate and load three MNIST digit classifiers that share one interface.

    from core import load_models
    models = load_models()                  # from artifacts/, or load_models(path)
    p = models["lenet"].predict_proba(x)    # x float32 (n, 28, 28) in [0, 1] -> (n, 10)

This package is the library: it never imports Streamlit, a browser or the dashboard, and
imports TensorFlow only when a Keras model is used.
"""

from __future__ import annotations

import os

# TensorFlow's start-up notices (oneDNN, CPU features) are for its developers, not our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.artifacts import ArtifactError, load_model, load_models  # noqa: E402
from core.models import MODELS, SPECS, model_class  # noqa: E402

__all__ = ["MODELS", "SPECS", "ArtifactError", "load_model", "load_models", "model_class"]
