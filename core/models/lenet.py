"""A LeNet-5 style convolutional network in Keras.

conv 5x5 -> pool -> conv 5x5 -> pool -> dense 120 -> dense 84 -> 10, as LeCun et al. (1998),
with ReLU, max pooling and batch normalisation in place of the original's tanh and
subsampling, and 16/32 filters where LeNet-5 had 6/16 (same time per epoch here, more accurate).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from core.models.keras_base import KerasClassifier


@dataclass
class LeNetSettings:
    filters: tuple = (16, 32)  # channels of the two 5x5 convolutions (LeNet-5: 6, 16)
    dense: tuple = (120, 84)  # the fully connected layers, as in LeNet-5
    dropout: float = 0.25  # dropout before each dense layer
    bn_momentum: float = 0.9  # batch norm's running-statistics momentum
    epochs: int = 15  # passes over the training set
    batch_size: int = 128  # images per Adam step
    lr: float = 2e-3  # Adam's peak learning rate; cosine-decayed to 0 over the run
    augment: bool = True  # random warps and stroke widths each epoch (core.augment)
    seed: int = 0  # initial weights, dropout and batch order


class LeNet(KerasClassifier):
    name = "lenet"
    Settings = LeNetSettings
    FORMAT_VERSION = 1

    def build(self):
        s = self.settings
        f1, f2 = s.filters

        def conv(filters, **kw):  # conv without bias: batch norm supplies the shift
            # momentum 0.9 (Keras: 0.99) lets BN's running statistics settle within a short live run
            bn = layers.BatchNormalization(momentum=s.bn_momentum)
            return [layers.Conv2D(filters, 5, use_bias=False, **kw), bn, layers.ReLU(), layers.MaxPooling2D()]

        dense = []
        for units in s.dense:
            dense += [layers.Dropout(s.dropout), layers.Dense(units, activation="relu")]
        return keras.Sequential(
            [
                keras.Input((28, 28)),
                layers.Reshape((28, 28, 1)),
                *conv(f1, padding="same"),  # 28x28 -> 14x14
                *conv(f2),  # 10x10 -> 5x5
                layers.Flatten(),
                *dense,
                layers.Dense(10, activation="softmax"),
            ],
            name=self.name,
        )
