"""core.artifacts checks values, not only shapes: each tampering below is refused with a message
naming the file, and the other models' files still read. (The pages' answer to the same
tamperings is tested in tests/test_app_damaged.py.)"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core import MODELS, ArtifactError, artifacts, load_model


@pytest.fixture
def art(tiny_artifacts, tmp_path):
    out = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, out)
    return out


def edit_json(path, change):
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


METRICS = {  # what is done to numpy_mlp's metrics.json -> words the message must hold
    "NaN accuracy": (lambda m: m | {"test_accuracy": float("nan")}, "test_accuracy"),
    "infinite loss": (lambda m: m | {"test_loss": float("inf")}, "test_loss"),
    "huge training time": (lambda m: m | {"train_seconds": 1e308 * 10}, "train_seconds"),
    "accuracy as text": (lambda m: m | {"test_accuracy": "99%"}, "test_accuracy"),
    "accuracy 5.0": (lambda m: m | {"test_accuracy": 5.0}, "test_accuracy"),
    "accuracy that disagrees": (lambda m: m | {"test_accuracy": 0.999}, "confusion matrix"),
    "negative confusion": (lambda m: m | {"confusion": [[-1] * 10] * 10}, "confusion"),
    "another model's metrics": (lambda m: m | {"model": "lenet"}, "swapped"),
    "a list": (lambda m: [m], "not a JSON object"),
}


@pytest.mark.parametrize("case", list(METRICS))
def test_implausible_metrics_are_refused(art, case):
    change, words = METRICS[case]
    path = art / "numpy_mlp" / "metrics.json"
    edit_json(path, change)
    with pytest.raises(ArtifactError) as e:
        artifacts.read("metrics", "numpy_mlp", art)
    assert str(path) in str(e.value) and words in str(e.value)
    for other in MODELS[1:]:
        artifacts.read("metrics", other, art)


MANIFEST = {
    "a list": (lambda m: [m], "not a JSON object"),
    "seed as text": (lambda m: m | {"seed": "zero"}, "seed"),
    "models as a list": (lambda m: m | {"models": ["numpy_mlp"]}, "'models'"),
    "epochs as text": (lambda m: m | {"models": m["models"] | {"lenet": m["models"]["lenet"] | {"epochs": "2"}}},
                       "epochs"),
    "older format": (lambda m: m | {"format_version": 1}, "format 1"),
}


@pytest.mark.parametrize("case", list(MANIFEST))
def test_implausible_manifest_is_refused(art, case):
    change, words = MANIFEST[case]
    path = art / artifacts.MANIFEST
    edit_json(path, change)
    with pytest.raises(ArtifactError) as e:
        artifacts.read("manifest", folder=art)
    assert str(path) in str(e.value) and words in str(e.value)


def test_history_with_nan_is_refused(art):
    path = art / "keras_mlp" / "history.json"
    edit_json(path, lambda h: [h[0] | {"val_loss": float("nan")}, *h[1:]])
    with pytest.raises(ArtifactError, match="epoch 1: 'val_loss'"):
        artifacts.read("history", "keras_mlp", art)


def test_predictions_outside_0_to_9_are_refused(art):
    path = art / "lenet" / "predictions.npz"
    p = artifacts.read("predictions", "lenet", art)
    p["pred"] = p["pred"].copy()
    p["pred"][5] = 11
    np.savez_compressed(path, **p)
    with pytest.raises(ArtifactError) as e:
        artifacts.read("predictions", "lenet", art)
    assert str(path) in str(e.value) and "'pred' has values outside 0 to 9" in str(e.value)


def test_swapped_keras_files_are_refused(art):
    """Two models' .keras files swapped between folders: each folder's model refuses the other's network."""
    a, b = art / "keras_mlp" / "model.keras", art / "lenet" / "model.keras"
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(a_bytes)
    for name, path in (("keras_mlp", a), ("lenet", b)):
        with pytest.raises(ArtifactError) as e:
            load_model(name, art)
        assert str(path) in str(e.value) and "swapped" in str(e.value)
    load_model("numpy_mlp", art)


def test_settings_with_a_wrong_type_are_refused(art):
    path = art / "lenet" / "settings.json"
    edit_json(path, lambda s: s | {"settings": s["settings"] | {"train": s["settings"]["train"] | {"epochs": "15"}}})
    with pytest.raises(ArtifactError) as e:
        load_model("lenet", art)
    assert str(path) in str(e.value) and "TrainSettings.epochs" in str(e.value)


def test_every_file_in_the_table_round_trips(tiny_artifacts, tmp_path):
    """write() then read() gives back what was read: the table's writer and reader agree. (All written first:
    a file that does not name its model is read only once the files it must agree with are there.)"""
    read = {}
    for kind, f in artifacts.FILES.items():
        name = MODELS[0] if f.per_model else None
        if f.optional and not artifacts.path(kind, name, tiny_artifacts).exists():
            continue  # not made by training (the beyond-MNIST results): tests/test_beyond.py round-trips them
        read[kind] = artifacts.read(kind, name, tiny_artifacts)
        artifacts.write(kind, read[kind], tmp_path, name)
    for kind, content in read.items():
        f = artifacts.FILES[kind]
        name = MODELS[0] if f.per_model else None
        again = artifacts.read(kind, name, tmp_path)
        if f.keys:
            for k in f.keys:
                np.testing.assert_array_equal(again[k], content[k])
        else:
            assert again == content


def test_a_damaged_npz_is_refused_and_closed(art):
    """Refusing a damaged archive leaves no file open (np.load alone would: a ResourceWarning at collection)."""
    import gc
    import warnings

    path = art / "lenet" / "predictions.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(200))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(3):
            with pytest.raises(ArtifactError):
                artifacts.read("predictions", "lenet", art)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
