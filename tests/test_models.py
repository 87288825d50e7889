"""The three models share one interface; these checks run over all of them."""

import json
from dataclasses import replace

import numpy as np
import pytest

from core import MODELS, ArtifactError, load_models, model_class
from core.data import Split
from core.settings import from_dict, to_dict, with_training

EXPECTED_PARAMS = {
    "numpy_mlp": 784 * 128 + 128 + 128 * 10 + 10,
    "keras_mlp": 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10,
    # conv1 5x5x1x16 (no bias: batch norm shifts) + BN(4x16) + conv2 5x5x16x32 + BN(4x32) + 800-120-84-10
    "lenet": 5 * 5 * 16 + 4 * 16 + 5 * 5 * 16 * 32 + 4 * 32 + 800 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10,
}


def tiny_split(n, seed=0):
    rng = np.random.default_rng(seed)
    return Split(rng.random((n, 28, 28), dtype=np.float32), rng.integers(0, 10, n).astype(np.uint8))


def make(name, **train):
    """A fresh model with some training settings changed (epochs=2, seed=7, ...)."""
    cls = model_class(name)
    return cls(with_training(cls.Settings(), **train))


@pytest.fixture(params=list(MODELS))
def model(request):
    return make(request.param, epochs=1, augment=False)


def test_probabilities_shape_and_sum(model):
    p = model.predict_proba(tiny_split(7).x)
    assert p.shape == (7, 10)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert model.predict_proba(np.zeros((0, 28, 28), np.float32)).shape[0] == 0


def test_parameter_count(model):
    assert model.num_params() == EXPECTED_PARAMS[model.name]


def test_fit_records_history_and_save_load_round_trip(model, tmp_path):
    model = make(model.name, epochs=2, augment=False)
    history = model.fit(tiny_split(256), tiny_split(64, seed=1))
    assert [r["epoch"] for r in history] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= set(history[0])
    model.save(tmp_path / model.name)
    loaded = type(model).load(tmp_path / model.name)
    x = tiny_split(20, seed=2).x
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.settings == model.settings
    assert loaded.history == history


def test_stop_from_callback_keeps_what_was_learnt(model):
    """Stopping after epoch 2 of 5 keeps the learnt weights: the model answers as it did when stopped."""
    model = make(model.name, epochs=5, augment=False)
    x = tiny_split(20, seed=2).x
    seen = {}

    def stop_after_two(record):
        seen[record["epoch"]] = model.predict_proba(x)
        return record["epoch"] < 2

    history = model.fit(tiny_split(128), tiny_split(32), on_epoch=stop_after_two)
    assert len(history) == 2
    np.testing.assert_array_equal(model.predict_proba(x), seen[2])
    assert not np.allclose(seen[1], seen[2])  # and the second epoch did change it


def test_load_refuses_other_format_version(model, tmp_path):
    model.save(tmp_path)
    meta = json.loads((tmp_path / "settings.json").read_text())
    meta["format_version"] = 999
    (tmp_path / "settings.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="format version 999"):
        type(model).load(tmp_path)


def test_load_refuses_missing_and_corrupt_weights(model, tmp_path):
    model.save(tmp_path)
    weights = next(p for p in tmp_path.iterdir() if p.suffix in (".npz", ".keras"))
    weights.write_bytes(b"not a real weights file")
    with pytest.raises(ArtifactError, match=f"{weights.name}.*corrupt"):
        type(model).load(tmp_path)
    weights.unlink()
    with pytest.raises(ArtifactError, match=f"{weights.name} is missing"):
        type(model).load(tmp_path)


def test_numpy_mlp_is_bit_identical_for_a_seed():
    runs = []
    for _ in range(2):
        m = make("numpy_mlp", seed=7, epochs=2)
        m.fit(tiny_split(300), tiny_split(50))
        runs.append(m.params)
    for k in runs[0]:
        assert runs[0][k].dtype == np.float32  # float64 creeping in would double the time
        np.testing.assert_array_equal(runs[0][k], runs[1][k])
    other = make("numpy_mlp", seed=8)
    assert not np.array_equal(other.params["W1"], runs[0]["W1"])


def test_numpy_mlp_backprop_matches_finite_differences():
    """Central differences in float64 against the hand-written backward pass."""
    cls = model_class("numpy_mlp")
    m = cls(replace(with_training(cls.Settings(), seed=3), hidden=16))
    m.params = {k: v.astype(np.float64) for k, v in m.params.items()}
    m.params["b1"] += 0.05  # keep pre-activations away from ReLU's kink
    rng = np.random.default_rng(0)
    x, y = rng.random((5, 784)), rng.integers(0, 10, 5)
    p, cache = m.forward(x)
    grads = m.backward(p, cache, y)
    eps = 1e-6
    for name, w in m.params.items():
        flat = w.reshape(-1)
        for i in rng.choice(flat.size, min(20, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = m.loss(x, y)
            flat[i] = old - eps
            down = m.loss(x, y)
            flat[i] = old
            numeric = (up - down) / (2 * eps)
            assert grads[name].reshape(-1)[i] == pytest.approx(numeric, rel=1e-4, abs=1e-8), (name, i)


def test_load_models_reads_a_trained_folder(tiny_artifacts):
    models = load_models(tiny_artifacts)
    assert list(models) == list(MODELS)
    x = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    for m in models.values():
        np.testing.assert_allclose(m.predict_proba(x).sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_committed_artifacts_load_and_match_their_metrics(name, mnist):
    """The committed models reproduce the test predictions saved beside them."""
    from core import artifacts
    from core.data import scale

    data = mnist
    saved = artifacts.read("predictions", name)
    model = load_models(names=[name])[name]
    x_test = scale(data[1][0][:2000])
    pred = model.predict_proba(x_test).argmax(1)
    assert np.mean(pred == saved["pred"][:2000]) > 0.999


def nudged_gradient_reference(model, x, y, rho):
    """SAM's gradient the slow, obvious way: the gradient, a step of length rho along it, the gradient there."""
    if model.name == "numpy_mlp":
        grads = model.backward(*model.forward(x.reshape(len(x), -1)), y)
        norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads.values()))
        before = {k: v.copy() for k, v in model.params.items()}
        for k in grads:
            model.params[k] = (before[k] + rho * grads[k] / norm).astype(np.float32)
        sharp = model.backward(*model.forward(x.reshape(len(x), -1)), y)
        model.params = before
        return sharp
    import keras
    import tensorflow as tf

    weights = model.net.trainable_variables

    def gradient():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model.net(x, training=True)))
        return [g.numpy() for g in tape.gradient(loss, weights)]

    before = [w.numpy() for w in weights]
    grads = gradient()
    norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads))
    for w, w0, g in zip(weights, before, grads):
        w.assign(w0 + rho * g / norm)
    sharp = gradient()
    for w, w0 in zip(weights, before):
        w.assign(w0)
    return sharp


@pytest.mark.parametrize("name", list(MODELS))
def test_sam_step_applies_the_gradient_taken_at_the_nudged_weights(name):
    """One SAM step from the same start equals the optimiser's plain step with the reference's nudged gradient,
    and differs from the plain step with the gradient at the weights themselves."""
    x, y = tiny_split(32, seed=4).x, tiny_split(32, seed=4).y.astype(np.int32)
    drop = {} if name == "numpy_mlp" else {"dropout": 0.0}  # two passes must see the same network
    settings = with_training(replace(model_class(name).Settings(), **drop), batch_size=32, seed=5, sam=0.5)
    sam, ref, plain = (model_class(name)(settings) for _ in range(3))
    if name != "numpy_mlp":  # plain SGD, so that a step's size shows its gradient's (Adam's first is lr * sign)
        import keras

        for m in (sam, ref, plain):
            m.net.compile(optimizer=keras.optimizers.SGD(), loss="sparse_categorical_crossentropy")
    sam.train_epoch(x, y, 0.05, np.random.default_rng(0))  # one batch: the whole of x
    sharp = nudged_gradient_reference(ref, x, y, rho=0.5)
    if name == "numpy_mlp":
        ref.step(sharp, 0.05)
        after, expected = sam.params, ref.params
        plain.step(plain.backward(*plain.forward(x.reshape(32, -1)), y), 0.05)
        unsharp = plain.params
    else:
        for m, g in ((ref, sharp), (plain, nudged_gradient_reference(plain, x, y, rho=0.0))):
            m.net.optimizer.learning_rate.assign(0.05)
            m.net.optimizer.apply_gradients(zip(g, m.net.trainable_variables))
        after, expected, unsharp = ({i: w.numpy() for i, w in enumerate(m.net.trainable_variables)}
                                    for m in (sam, ref, plain))
    for k in after:
        np.testing.assert_allclose(after[k], expected[k], rtol=1e-4, atol=1e-5, err_msg=str(k))
    assert any(not np.allclose(after[k], unsharp[k], rtol=1e-4, atol=1e-5) for k in after)


@pytest.mark.parametrize("name", list(MODELS))
def test_sam_training_learns_and_stops_when_asked(name):
    model = make(name, epochs=3, augment=False, sam=0.05, lr=model_class(name).Settings().train.lr)
    model.fit(tiny_split(256), tiny_split(64, seed=1))
    assert model.history[-1]["loss"] < model.history[0]["loss"]
    calls = []
    model.train_epoch(tiny_split(3000).x, tiny_split(3000).y, 1e-3, np.random.default_rng(0),
                      on_batch=lambda done: calls.append(done) or False)
    assert model._stopped and len(calls) == 1 and 0 < calls[0] < 1


@pytest.mark.parametrize("name", list(MODELS))
def test_the_last_epochs_see_gentler_distortions(name, monkeypatch):
    """``gentle_share`` 0.4 of 5 epochs: epochs 1-3 get the model's own augmentation, 4-5 it scaled by
    ``gentle_strength``; without it every epoch gets the same."""
    import core.models.base as base

    seen = []
    monkeypatch.setattr(base, "augment", lambda x, rng, a, labels=None: seen.append(a) or x)
    own = model_class(name).Settings().train.augmentation
    make(name, epochs=5, gentle_share=0.4, gentle_strength=0.25).fit(tiny_split(64), tiny_split(16, seed=1))
    assert seen == [own] * 3 + [own.scaled(0.25)] * 2
    seen.clear()
    plain = make(name, epochs=5, gentle_share=0.0)
    plain.fit(tiny_split(64), tiny_split(16, seed=1))
    assert seen == [own] * 5
    saved = to_dict(plain.settings)
    del saved["train"]["gentle_share"], saved["train"]["gentle_strength"]  # saved before the fields existed
    assert from_dict(type(plain.settings), saved) == plain.settings
