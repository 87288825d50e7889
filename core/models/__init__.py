"""The three models, by name: who they are (titles, colours, the write-up they reproduce) and where
their code lives. Everything that names or colours a model reads it from ``SPECS``. Classes are
imported lazily so that NumPy-only code never loads TensorFlow.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the key in files, folders and the command line
    title: str  # how pages, tables and the CLI name it
    short: str  # where space is short: chart legends, cards
    color: str  # its colour in every chart (Okabe-Ito: colour-blind safe, readable on light and dark)
    writeup: float  # test accuracy reported by the original write-up this model reproduces
    module: str
    cls: str


SPECS = {  # the order is the order shown everywhere
    "numpy_mlp": ModelSpec("numpy_mlp", "ANN from scratch (NumPy)", "NumPy ANN", "#E69F00", 0.95,
                           "core.models.numpy_mlp", "NumpyMLP"),
    "keras_mlp": ModelSpec("keras_mlp", "ANN (Keras)", "Keras ANN", "#56B4E9", 0.9766,
                           "core.models.keras_mlp", "KerasMLP"),
    "lenet": ModelSpec("lenet", "LeNet-5 CNN (Keras)", "LeNet-5", "#009E73", 0.9824,
                       "core.models.lenet", "LeNet"),
}
MODELS = tuple(SPECS)


def spec(name: str) -> ModelSpec:
    if name not in SPECS:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return SPECS[name]


def model_class(name: str):
    s = spec(name)
    return getattr(importlib.import_module(s.module), s.cls)
