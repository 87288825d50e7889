"""The three models, by name. Imported lazily so that NumPy-only code never loads TensorFlow."""

from __future__ import annotations

import importlib

MODELS = {  # name -> (module, class); the order is the order shown everywhere
    "numpy_mlp": ("core.models.numpy_mlp", "NumpyMLP"),
    "keras_mlp": ("core.models.keras_mlp", "KerasMLP"),
    "lenet": ("core.models.lenet", "LeNet"),
}
TITLES = {"numpy_mlp": "ANN from scratch (NumPy)", "keras_mlp": "ANN (Keras)", "lenet": "LeNet-5 CNN (Keras)"}


def model_class(name: str):
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    module, cls = MODELS[name]
    return getattr(importlib.import_module(module), cls)
