"""A 784-128-64-10 multilayer perceptron in Keras: ReLU, softmax, Adam, sparse cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from core.models.keras_base import KerasClassifier


@dataclass
class KerasMLPSettings:
    hidden: tuple = (128, 64)  # hidden ReLU layers: 784-128-64-10 as in the original write-up
    dropout: float = 0.1  # dropout after each hidden layer, against overfitting
    epochs: int = 30  # passes over the training set
    batch_size: int = 128  # images per Adam step
    lr: float = 1e-3  # Adam's peak learning rate; cosine-decayed to 0 over the run
    augment: bool = True  # random warps and stroke widths each epoch (core.augment)
    seed: int = 0  # initial weights, dropout and batch order


class KerasMLP(KerasClassifier):
    name = "keras_mlp"
    Settings = KerasMLPSettings
    FORMAT_VERSION = 1

    def build(self):
        s = self.settings
        hidden = []
        for units in s.hidden:
            hidden += [layers.Dense(units, activation="relu"), layers.Dropout(s.dropout)]
        return keras.Sequential(
            [keras.Input((28, 28)), layers.Flatten(), *hidden, layers.Dense(10, activation="softmax")],
            name=self.name,
        )
