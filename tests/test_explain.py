"""core.explain and the models' inspection hooks: activations, saliency, learnt weights, distortions and
robustness, on trained models."""

from __future__ import annotations

import numpy as np
import pytest

from core import explain
from core.pixels import morph


@pytest.fixture(scope="module")
def models(tiny_artifacts):
    from core import load_models

    return load_models(tiny_artifacts)


@pytest.fixture(scope="module")
def digits(mnist):
    """The first 40 test digits, scaled to [0, 1], and their labels."""
    (_, _), (x, y) = mnist
    return x[:40].astype(np.float32) / 255, y[:40]


def test_activation_shapes(models, digits):
    x = digits[0][0]
    (title, h), = models["numpy_mlp"].activations(x)
    assert h.shape == (128,) and (h >= 0).all() and "128" in title
    assert [a.shape for _, a in models["keras_mlp"].activations(x)] == [(128,), (64,)]
    lenet = models["lenet"].activations(x)
    shapes = [a.shape for _, a in lenet]
    assert shapes[:4] == [(28, 28, 16), (14, 14, 16), (10, 10, 32), (5, 5, 32)]
    assert [t.split()[0] for t, _ in lenet[:4]] == ["convolution", "max", "convolution", "max"]
    assert all((a >= 0).all() for _, a in lenet)  # ReLU and pooling outputs
    # pooling really is 2x2 max pooling of the conv block before it
    conv1, pool1 = lenet[0][1], lenet[1][1]
    np.testing.assert_allclose(pool1, conv1.reshape(14, 2, 14, 2, 16).max((1, 3)), rtol=1e-5, atol=1e-6)


def test_activations_match_the_models_own_forward(models, digits):
    x = digits[0][0]
    m = models["numpy_mlp"]
    _, (_, _, h) = m.forward(x.reshape(1, -1))
    np.testing.assert_array_equal(m.activations(x)[0][1], h[0])


@pytest.mark.parametrize("name", ["numpy_mlp", "keras_mlp", "lenet"])
def test_saliency_shape_and_sign(models, digits, name):
    x = digits[0][0]
    for method in explain.METHODS:
        s = explain.saliency(models[name], x, method=method)
        assert s.shape == (28, 28) and s.dtype == np.float32 and (s >= 0).all() and s.max() > 0
    signed = explain.saliency(models[name], x, signed=True)
    assert (signed < 0).any() or (signed > 0).any()


def _ink_mask(x, grow=2):
    return morph((x > 0.2)[None].astype(np.float32), grow)[0] > 0


@pytest.mark.parametrize("name", ["numpy_mlp", "keras_mlp", "lenet"])
def test_saliency_is_concentrated_on_the_ink(models, digits, name):
    """Most of the saliency mass lies on (dilated) strokes: for integrated gradients all of it
    must, and most of the map's weight sits on the darkest part of the stroke, not evenly spread."""
    for x in digits[0][:10]:
        s = explain.saliency(models[name], x)
        mask = _ink_mask(x)
        assert s[mask].sum() / s.sum() > 0.99
        assert mask.mean() < 0.5  # the mask is not most of the picture


@pytest.mark.parametrize("name", ["numpy_mlp", "keras_mlp", "lenet"])
def test_committed_models_saliency_is_on_the_ink(committed_models, digits, name):
    """With the fully trained models: over 70% (in fact all) of the default map's mass on the strokes."""
    fractions = [explain.saliency(committed_models[name], x)[_ink_mask(x)].sum() / explain.saliency(committed_models[name], x).sum()
                 for x in digits[0][:20]]
    assert min(fractions) > 0.7


def test_committed_cnn_gradient_is_densest_near_the_strokes(committed_models, digits):
    """The CNN's plain gradient, which may light up any pixel, is still strongest near the ink."""
    ratios = []
    for x in digits[0][:20]:
        s, mask = explain.saliency(committed_models["lenet"], x, method="gradient"), _ink_mask(x)
        ratios.append(s[mask].mean() / s[~mask].mean())
    assert np.mean(ratios) > 1.2


def _numpy_logits(m, x):
    P = {k: v.astype(np.float64) for k, v in m.params.items()}
    return np.maximum(x.reshape(len(x), -1) @ P["W1"] + P["b1"], 0) @ P["W2"] + P["b2"]


def test_numpy_hand_gradient_matches_finite_differences(models, digits):
    m = models["numpy_mlp"]
    x = digits[0][0].astype(np.float64)
    c = int(_numpy_logits(m, x[None]).argmax())
    g = m.logit_gradient(x.astype(np.float32), c)[0]
    rng = np.random.default_rng(0)
    eps = 1e-4
    for i, j in zip(rng.integers(0, 28, 40), rng.integers(0, 28, 40)):
        up, down = x.copy(), x.copy()
        up[i, j] += eps
        down[i, j] -= eps
        fd = (_numpy_logits(m, up[None])[0, c] - _numpy_logits(m, down[None])[0, c]) / (2 * eps)
        assert g[i, j] == pytest.approx(fd, rel=1e-3, abs=1e-4)


def test_keras_gradient_matches_finite_differences(models, digits):
    """The GradientTape path agrees with the numerical slope of the model's own logit."""
    import tensorflow as tf

    m = models["keras_mlp"]
    x = digits[0][1]
    c = int(m.predict_proba(x[None]).argmax())
    g = m.logit_gradient(x, c)[0]

    def logit(img):
        h = tf.convert_to_tensor(img[None].astype(np.float32))
        for layer in m.net.layers[:-1]:
            h = layer(h, training=False)
        return float((tf.matmul(h, m.net.layers[-1].kernel) + m.net.layers[-1].bias)[0, c])

    i, j = np.unravel_index(np.abs(g).argmax(), g.shape)
    up, down = x.copy(), x.copy()
    up[i, j] += 0.01
    down[i, j] -= 0.01
    assert g[i, j] == pytest.approx((logit(up) - logit(down)) / 0.02, rel=0.05)


def test_integrated_gradients_add_up_to_the_score(models, digits):
    """Completeness: the map sums to logit(digit) - logit(blank)."""
    m = models["numpy_mlp"]
    x = digits[0][2]
    c = int(_numpy_logits(m, x[None]).argmax())
    total = explain.integrated_gradients(m, x, c, steps=256).sum()
    expected = _numpy_logits(m, x[None])[0, c] - _numpy_logits(m, np.zeros((1, 28, 28)))[0, c]
    assert total == pytest.approx(expected, rel=0.02)


def test_learnt_weight_shapes(models):
    assert models["numpy_mlp"].first_layer_weights().shape == (128, 28, 28)
    np.testing.assert_array_equal(models["numpy_mlp"].first_layer_weights()[5].ravel(),
                                  models["numpy_mlp"].params["W1"][:, 5])
    assert models["keras_mlp"].first_layer_weights().shape == (128, 28, 28)
    assert models["lenet"].conv_filters().shape == (16, 5, 5)
    assert models["lenet"].conv_filters(1).shape == (32, 16, 5, 5)
    with pytest.raises(TypeError):
        models["lenet"].first_layer_weights()
    with pytest.raises(TypeError):
        models["numpy_mlp"].conv_filters()


def test_distort_is_identity_at_zero_strength(digits):
    x = digits[0][:5]
    np.testing.assert_array_equal(explain.distort(x), x)
    np.testing.assert_array_equal(explain.distort(x[0]), x[0])
    for kind, spec in explain.DISTORTIONS.items():
        np.testing.assert_array_equal(explain.distort(x, **explain.distortion_kwargs(kind, spec["identity"])), x)
    # a whole-pixel shift with bilinear sampling is an exact move
    moved = explain.distort(x[0], shift=(2, 1))
    np.testing.assert_array_equal(moved[1:, 2:], x[0][:-1, :-2])


def test_shared_warp_map_matches_per_image_maps(digits):
    """core.pixels.warp's fast path for one shared map samples exactly as per-image maps do."""
    from core.pixels import warp

    x = digits[0][:6]
    rng = np.random.default_rng(0)
    sy, sx = (rng.uniform(-3, 31, (2, 28, 28))).astype(np.float32)
    expected = warp(x, np.broadcast_to(sy, x.shape).copy(), np.broadcast_to(sx, x.shape).copy())
    np.testing.assert_array_equal(warp(x, sy, sx), expected)


def test_one_forward_pass_for_one_image_and_many(models, digits):
    """predict_proba answers one image as it answers it among many, and agrees with softmax(logits)."""
    x = digits[0]
    for m in models.values():
        many = m.predict_proba(x)
        np.testing.assert_allclose(m.predict_proba(x[3:4])[0], many[3], atol=1e-6)
        z = m.logits(x)
        e = np.exp(z - z.max(1, keepdims=True))
        np.testing.assert_allclose(e / e.sum(1, keepdims=True), many, atol=1e-5)


def test_distortions_do_what_they_say(digits):
    x = digits[0][0]
    ink = x.sum()
    assert explain.distort(x, thicken=1).sum() > ink > explain.distort(x, thicken=-1).sum()
    assert explain.distort(x, scale=0.5).sum() < 0.5 * ink
    r = explain.distort(x, rotate=90)
    assert r.shape == (28, 28) and r.min() >= 0 and r.max() <= 1
    # rotating 4 x 90 degrees brings the digit back (up to interpolation at the border)
    back = x
    for _ in range(4):
        back = explain.distort(back, rotate=90)
    np.testing.assert_allclose(back, x, atol=1e-4)
    # anticlockwise: a pixel right of the centre moves above it
    dot = np.zeros((28, 28), np.float32)
    dot[14, 20] = 1
    y, x_ = np.unravel_index(explain.distort(dot, rotate=90).argmax(), (28, 28))
    assert y < 10 and 12 <= x_ <= 15
    noisy = explain.distort(x, noise=0.3, seed=1)
    assert not np.array_equal(noisy, x) and np.array_equal(noisy, explain.distort(x, noise=0.3, seed=1))
    # thickening stays centred: the centre of mass barely moves
    def centre(a):
        return np.array(np.nonzero(a > 0.5)).mean(1)
    assert np.abs(centre(explain.distort(x, thicken=2)) - centre(x)).max() < 0.6


def test_robustness_at_zero_strength_is_plain_accuracy(models, digits):
    x, y = digits
    curves = explain.robustness_curve(models, x, y, "rotate", [0, 45, 90])
    assert set(curves) == set(models)
    for name, accs in curves.items():
        assert len(accs) == 3
        assert accs[0] == pytest.approx(float((models[name].predict(x) == y).mean()))
    scale = explain.robustness_curve({"lenet": models["lenet"]}, x, y, "scale", [1.0])
    assert scale["lenet"][0] == pytest.approx(curves["lenet"][0])
