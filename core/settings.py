"""How a model is trained: ``TrainSettings``, the one dataclass the three models share, and the
round trip of any settings dataclass to and from JSON (nested dataclasses, tuples, checked types).

Every model's settings dataclass holds its architecture fields plus ``train: TrainSettings``,
which embeds ``Augment`` (the augmentation strength), so ``settings.json`` beside the weights
records everything that made the model.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass

from core.augment import Augment


@dataclass(frozen=True)
class TrainSettings:
    epochs: int  # passes over the training set
    batch_size: int = 128  # images per optimiser step
    lr: float = 1e-3  # peak learning rate; cosine-decayed to 0 over the run
    seed: int = 0  # initial weights, batch order, dropout and augmentation
    augment: bool = True  # a fresh random distortion of every training image each epoch (core.augment)
    augmentation: Augment = Augment()  # how strong those distortions may be
    # sharpness-aware minimisation (Foret et al. 2021): each step's gradient is taken at the worst weights within
    # this distance (to first order) and applied at the weights; 0 for plain steps. Two passes a batch.
    sam: float = 0.0
    # the last ``gentle_share`` of the epochs see every distortion at ``gentle_strength`` times its strength:
    # strong distortions early show a small network the range of hands, gentler ones late let it fit them
    # (docs/handwriting.md, the seventeenth look). 0: the same strength throughout.
    gentle_share: float = 0.0
    gentle_strength: float = 0.5

    @property
    def gentle_from(self) -> int:
        """The first (0-based) epoch at the gentler strength; ``epochs`` when there is none."""
        return round(self.epochs * (1 - self.gentle_share))

    def augmentation_at(self, epoch: int) -> Augment:
        """The augmentation for epoch ``epoch`` (0-based) of this run of ``epochs``."""
        if epoch < self.gentle_from:
            return self.augmentation
        return self.augmentation.scaled(self.gentle_strength)


def with_training(settings, **changes):
    """A copy of a model's settings with some training settings changed (epochs=3, lr=0.01, ...)."""
    return dataclasses.replace(settings, train=dataclasses.replace(settings.train, **changes))


def to_dict(settings) -> dict:
    return dataclasses.asdict(settings)


def from_dict(cls, data: dict):
    """Rebuild a settings dataclass from ``to_dict``'s output; raises TypeError naming a bad field.

    JSON has no tuples (layer sizes are tuples: hashable, immutable) and no dataclasses, so
    both are restored from the annotations; every value is checked against its field's type.
    """
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} must be a JSON object, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    return cls(**{name: _value(cls, name, hints[name], value) for name, value in data.items()})


def _value(cls, name: str, kind, value):
    where = f"{cls.__name__}.{name}"
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif kind is tuple:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise TypeError(f"{where} should be {getattr(kind, '__name__', kind)}, not {value!r}")
    return value
