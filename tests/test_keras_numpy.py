"""The Keras networks run in NumPy (core.models.keras_numpy) against Keras itself, the reference: every
layer's output, probabilities, logits and pixel gradients, from memory and from a saved file; files it
cannot run are refused with their path; and reading the models never loads TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import ArtifactError, load_model
from core.models import keras_numpy, model_class

ROOT = Path(__file__).resolve().parents[1]
KERAS_MODELS = ("keras_mlp", "lenet")


def _keras_scores(net, x):
    """Keras's own logits: every layer in inference mode, the last Dense without its softmax."""
    import tensorflow as tf

    h = tf.convert_to_tensor(x)
    for layer in net.layers[:-1]:
        h = layer(h, training=False)
    return tf.matmul(h, net.layers[-1].kernel) + net.layers[-1].bias


@pytest.fixture(scope="module")
def noise():
    # noise, not digits: flat background makes max pooling's ties break by rounding, in Keras as here
    return np.random.default_rng(3).random((6, 28, 28)).astype(np.float32)


@pytest.mark.parametrize("name", KERAS_MODELS)
def test_each_layer_and_the_probabilities_match_keras(tiny_artifacts, name, noise, mnist):
    model = load_model(name, tiny_artifacts)
    net = model.net  # Keras's network from the same file
    x = np.concatenate([noise, mnist[1][0][:50].astype(np.float32) / 255])
    h = x
    for layer, (mine, out) in zip(net.layers, model.network.outputs(x), strict=True):
        h = np.asarray(layer(h, training=False))
        np.testing.assert_allclose(out, h, rtol=1e-4, atol=2e-5, err_msg=f"{name}: layer {layer.name}")
        assert type(mine).__name__ == type(layer).__name__
    np.testing.assert_allclose(model.predict_proba(x), np.asarray(net(x, training=False)), atol=1e-5)
    np.testing.assert_allclose(model.logits(x), np.asarray(_keras_scores(net, x)), rtol=1e-4, atol=1e-4)
    assert model.predict_proba(x).dtype == np.float32


@pytest.mark.parametrize("name", KERAS_MODELS)
def test_logit_gradient_matches_keras_gradient_tape(tiny_artifacts, name, noise):
    import tensorflow as tf

    model = load_model(name, tiny_artifacts)
    target = np.array([0, 3, 7, 9, 1, 4])
    xt = tf.convert_to_tensor(noise)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        picked = tf.gather(_keras_scores(model.net, xt), target, axis=1, batch_dims=1)
    expected = np.asarray(tape.gradient(picked, xt))
    np.testing.assert_allclose(model.logit_gradient(noise, target), expected, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", KERAS_MODELS)
def test_a_trained_network_and_its_saved_file_answer_alike(name, tmp_path, mnist):
    """The twin read from memory during training (after each epoch's changes) is the file's twin."""
    from core.data import splits

    train, val, _ = splits(mnist, subset=600, seed=0)
    cls = model_class(name)
    s = cls.Settings()
    model = cls(type(s)(**{**vars(s), "train": type(s.train)(**{**vars(s.train), "epochs": 1})}))
    before = model.predict_proba(val.x[:20])
    model.fit(train, val)
    after = model.predict_proba(val.x[:20])
    assert not np.allclose(before, after), "the NumPy twin must follow the weights as they train"
    np.testing.assert_allclose(after, np.asarray(model.net(val.x[:20], training=False)), atol=1e-5)
    model.save(tmp_path / name)
    loaded = cls.load(tmp_path / name)
    np.testing.assert_array_equal(loaded.predict_proba(val.x[:20]), after)
    assert loaded.num_params() == model.net.count_params()


def test_other_layer_settings_match_keras_too():
    """Settings the two models do not use but the reader accepts: an even kernel with 'same' padding
    (TensorFlow puts the odd pixel at the end), a bias and ReLU inside the convolution, odd sizes for pooling."""
    import keras

    keras.utils.set_random_seed(1)
    net = keras.Sequential([
        keras.Input((27, 27)), keras.layers.Reshape((27, 27, 1)),
        keras.layers.Conv2D(3, 4, padding="same", activation="relu"),
        keras.layers.BatchNormalization(center=False), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(2, (3, 2), padding="valid"), keras.layers.ReLU(),
        keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax"),
    ], name="odd")
    x = np.random.default_rng(0).random((4, 27, 27)).astype(np.float32)
    net(x, training=True)  # batch norm's running statistics move off their defaults
    mine = keras_numpy.Network.from_keras(net)
    np.testing.assert_allclose(mine.predict_proba(x), np.asarray(net(x, training=False)), atol=1e-5)


def test_layers_it_does_not_compute_are_refused_with_the_path(tmp_path):
    import keras

    for i, layer in enumerate([keras.layers.Conv2D(2, 3, strides=2), keras.layers.AveragePooling2D(2)]):
        net = keras.Sequential([keras.Input((28, 28)), keras.layers.Reshape((28, 28, 1)), layer,
                                keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
        path = tmp_path / f"{i}.keras"
        net.save(path)
        with pytest.raises(ArtifactError, match="cannot run") as e:
            keras_numpy.read(path)
        assert str(path) in str(e.value)
    no_softmax = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])
    no_softmax.save(tmp_path / "logits.keras")
    with pytest.raises(ArtifactError, match="softmax Dense layer of 10 units"):
        keras_numpy.read(tmp_path / "logits.keras")


def test_damaged_files_are_refused_with_the_path(tiny_artifacts, tmp_path):
    good = tiny_artifacts / "keras_mlp" / "model.keras"
    cut = tmp_path / "cut.keras"
    cut.write_bytes(good.read_bytes()[:2000])
    no_weights = tmp_path / "no_weights.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(no_weights, "w") as dst:
        dst.writestr("config.json", src.read("config.json"))
    wrong_shape = tmp_path / "wrong_shape.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(wrong_shape, "w") as dst:
        config = json.loads(src.read("config.json"))
        config["config"]["layers"][2]["config"]["units"] = 100  # the arrays say 128
        dst.writestr("config.json", json.dumps(config))
        dst.writestr("model.weights.h5", src.read("model.weights.h5"))
    for path, says in ((cut, "corrupt or unreadable"), (no_weights, "corrupt or unreadable"),
                       (wrong_shape, "weights of shapes"), (tmp_path / "none.keras", "missing")):
        with pytest.raises(ArtifactError, match=says) as e:
            keras_numpy.read(path)
        assert str(path) in str(e.value)


def test_reading_and_using_the_models_never_loads_tensorflow(tiny_artifacts):
    """What the web server does with the models (load, predict a drawing, look inside) in a fresh
    interpreter: TensorFlow, some 500 MB of memory, is never imported."""
    code = f"""
import sys
import numpy as np
from core import load_models
from core.predict import predict_image
models = load_models({str(tiny_artifacts)!r})
drawing = np.zeros((280, 280, 4), np.uint8)
drawing[60:220, 130:150] = 255
assert len(predict_image(drawing, models)["predictions"]) == 3
for m in models.values():
    m.activations(np.zeros((28, 28))); m.logit_gradient(np.zeros((28, 28)), 3); m.multiply_adds()
models["lenet"].conv_filters(1); models["keras_mlp"].first_layer_weights()
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
