"""Train, evaluate and load three MNIST digit classifiers that share one interface.

    from core import load_models
    models = load_models()                  # from artifacts/, or load_models(path)
    p = models["lenet"].predict_proba(x)    # x float32 (n, 28, 28) in [0, 1] -> (n, 10)

This package is the library: it never imports Streamlit, a browser or the dashboard, and
imports TensorFlow only where a Keras model is built or trained (quietly: see ``core.quiet_tf``): loading
the models and everything that reads them runs in NumPy (``core.models.keras_numpy``).
"""

from __future__ import annotations

from core import quiet_tf

quiet_tf.install()  # before anything below can import TensorFlow

from core.artifacts import ArtifactError, load_model, load_models  # noqa: E402
from core.models import MODELS, SPECS, model_class  # noqa: E402

__all__ = ["MODELS", "SPECS", "ArtifactError", "load_model", "load_models", "model_class"]
