"""core.preprocess: drawings and uploads become MNIST-like 28x28 digits, or a clear refusal."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.preprocess import (
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    ImageError,
    NoDigit,
    deslant,
    naive,
    read_image,
    slant,
    stroke_width,
    to_mnist,
)

SEVEN = [(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)]  # a "7" in a unit box, as a polyline


def draw(points=SEVEN, box=(100, 60, 180, 180), pen=12, size=280, ink=255, bg=0, mode="L"):
    """A synthetic drawing: a polyline scaled into ``box`` (left, top, right, bottom)."""
    left, top, right, bottom = box
    xy = [(left + x * (right - left), top + y * (bottom - top)) for x, y in points]
    im = Image.new(mode, (size, size), bg)
    ImageDraw.Draw(im).line(xy, fill=ink, width=pen, joint="curve")
    return np.asarray(im)


def bbox(x, level=0.3):
    rows, cols = np.flatnonzero((x > level).any(1)), np.flatnonzero((x > level).any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(x):
    r = np.arange(28)
    return float(x.sum(1) @ r / x.sum()), float(x.sum(0) @ r / x.sum())


# --- the MNIST recipe ----------------------------------------------------------------------


def test_small_off_centre_digit_comes_out_centred_and_20_pixels():
    x = to_mnist(draw(box=(8, 200, 48, 268), pen=5))  # 40x68 px in the bottom-left corner
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() == pytest.approx(1.0)
    h, w = bbox(x)
    assert 19 <= max(h, w) <= 21 and h > w  # the longer side fills the 20-pixel box, aspect kept
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14.0) < 0.3 and abs(cx - 14.0) < 0.3


def test_the_recipe_constants_are_read_at_call_time(monkeypatch):
    # So a sweep of core.preprocess's constants (docs/handwriting.md) really changes what it sweeps.
    import core.preprocess as preprocess

    faint = np.zeros((28, 28), np.float32)
    faint[5:9, 6:12] = 0.5
    assert preprocess._bbox(faint) == (5, 9, 6, 12)
    monkeypatch.setattr(preprocess, "INK_LEVEL", 0.6)
    assert preprocess._bbox(faint) is None
    monkeypatch.setattr(preprocess, "BOX", 16)
    assert 15 <= max(bbox(to_mnist(draw()))) <= 17  # 20 as committed (the test above)


def test_size_and_position_do_not_matter():
    small = to_mnist(draw(box=(8, 200, 48, 268), pen=5))
    big = to_mnist(draw(box=(60, 20, 220, 292 - 20), pen=20))
    assert np.abs(small - big).mean() < 0.03


def test_inverted_polarity_gives_the_same_result():
    white_on_black = draw()
    assert np.allclose(to_mnist(white_on_black), to_mnist(255 - white_on_black), atol=1e-6)
    blue_on_white = draw(mode="RGB", ink=(20, 40, 160), bg=(255, 255, 255))
    assert np.abs(to_mnist(blue_on_white) - to_mnist(white_on_black)).max() < 0.02


def test_alpha_only_input_like_the_canvas():
    stroke = draw()
    zero = np.zeros_like(stroke)
    reference = to_mnist(stroke)
    black_ink = np.dstack([zero, zero, zero, stroke])  # black pen on a transparent canvas
    white_ink = np.dstack([zero + 255, zero + 255, zero + 255, stroke])
    opaque = np.dstack([stroke, stroke, stroke, zero + 255])
    for canvas in (black_ink, white_ink, opaque):
        assert np.allclose(to_mnist(canvas), reference, atol=1e-6)


def test_float_input_matches_uint8():
    stroke = draw()
    assert np.allclose(to_mnist(stroke / 255.0), to_mnist(stroke), atol=1e-6)
    assert np.allclose(to_mnist(stroke.astype(np.float32)), to_mnist(stroke), atol=1e-6)  # 0..255 floats


def test_thin_and_thick_pens_both_give_mnist_strokes():
    thin, thick = to_mnist(draw(pen=2)), to_mnist(draw(pen=36))
    for x in (thin, thick):
        assert 1.8 < stroke_width(x) < 3.2  # MNIST's middle half is 2.0-2.8
    assert np.abs(thin - thick).mean() < 0.05
    raw_thin = to_mnist(draw(pen=2), normalize_stroke=False)
    raw_thick = to_mnist(draw(pen=36), normalize_stroke=False)
    assert stroke_width(raw_thick) > 1.8 * stroke_width(raw_thin)  # what normalisation undoes


def test_large_photo_matches_small():
    small = draw()
    big = np.asarray(Image.fromarray(small).resize((4000, 4000), Image.Resampling.BILINEAR))
    assert np.abs(to_mnist(big) - to_mnist(small)).mean() < 0.02


def test_jpeg_noise_on_grey_paper():
    paper = draw(ink=40, bg=200)
    buf = io.BytesIO()
    Image.fromarray(paper).save(buf, "JPEG", quality=60)
    assert np.abs(to_mnist(read_image(buf.getvalue())) - to_mnist(draw())).mean() < 0.03


# --- nothing to read -------------------------------------------------------------------------


@pytest.mark.parametrize("blank", [
    np.zeros((280, 280, 4), np.uint8),  # the untouched canvas: transparent
    np.full((280, 280), 255, np.uint8),  # white paper
    np.full((100, 60, 3), 30, np.uint8),  # any single colour
    np.random.default_rng(0).integers(118, 138, (280, 280)).astype(np.uint8),  # faint noise only
])
def test_blank_input_is_no_digit(blank):
    with pytest.raises(NoDigit, match="Nothing drawn") as e:
        to_mnist(blank)
    assert e.value.reason == "blank"


def disc(cy, cx, radius, size=280):
    yy, xx = np.mgrid[:size, :size]
    return np.where((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2, 255, 0).astype(np.uint8)


@pytest.mark.parametrize("mark", [
    disc(140, 140, 3),  # a stray dot
    disc(60, 200, 25),  # a fat blob: one click with a thick pen
    draw(points=[(0, 0), (1, 0)], box=(60, 100, 80, 100), pen=30),  # a short square smudge
])
def test_a_stray_dot_is_no_digit_and_says_so(mark):
    assert mark.any()
    with pytest.raises(NoDigit) as e:
        to_mnist(mark)
    assert e.value.reason == "dot" and ("dot" in str(e.value) or "mark" in str(e.value))


def test_a_tiny_but_real_digit_is_still_read():
    to_mnist(draw(box=(100, 100, 120, 130), pen=3))  # 20x30 px with a fine pen: small, not a dot


@pytest.mark.parametrize("bad", [np.zeros(10), np.zeros((5, 5, 5)), np.zeros((0, 10)), np.array([["a"]])])
def test_arrays_that_are_not_images(bad):
    with pytest.raises(ImageError):
        to_mnist(bad)


def test_naive_baseline_is_whole_image_with_bright_ink():
    canvas = 255 - draw(box=(8, 200, 48, 268), pen=5)  # dark ink on white, in a corner
    x = naive(canvas)
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x[:14, 14:].max() < 0.05 and x[14:, :7].max() > 0.2  # ink stays in its corner, bright


# --- real digits, real models ----------------------------------------------------------------


def test_mnist_digits_upscaled_10x_keep_their_prediction(mnist, committed_models):
    (_, _), (x_test, _) = mnist
    digits = x_test[:50]
    canvases = [np.asarray(Image.fromarray(d).resize((280, 280), Image.Resampling.BICUBIC)) for d in digits]
    upscaled = np.stack([to_mnist(c) for c in canvases])
    as_is = np.stack([to_mnist(d) for d in digits])  # the app's "test digit" source: 28x28 already
    for name, model in committed_models.items():
        before = model.predict(digits.astype(np.float32) / 255)
        for prepared in (upscaled, as_is):
            after = model.predict(prepared)
            assert after[0] == before[0], name  # the first test digit, a 7
            assert (after == before).mean() >= 0.96, name


# --- reading files ---------------------------------------------------------------------------


def encode(array_or_image, fmt="PNG", **kw) -> bytes:
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("mode, shape", [
    ("L", (280, 280)), ("RGB", (280, 280, 3)), ("RGBA", (280, 280, 4)), ("LA", (280, 280, 4)),
    ("P", (280, 280, 3)), ("1", (280, 280)), ("CMYK", (280, 280, 3)),
])
def test_read_image_modes(mode, shape):
    im = Image.fromarray(draw()).convert(mode)
    a = read_image(encode(im, "JPEG" if mode == "CMYK" else "PNG"))
    assert a.dtype == np.uint8 and a.shape == shape
    assert np.abs(to_mnist(a) - to_mnist(draw())).mean() < 0.02


def test_read_image_palette_with_transparency_and_16_bit():
    p = Image.fromarray(draw()).convert("P")
    p.info["transparency"] = 0
    assert read_image(encode(p, transparency=0)).shape == (280, 280, 4)
    sixteen = read_image(encode(Image.fromarray(draw().astype(np.uint16) * 257)))
    assert sixteen.dtype == np.uint8 and sixteen.max() == 255 and np.array_equal(sixteen, draw())


def test_read_image_by_content_not_extension(tmp_path):
    path = tmp_path / "digit.jpg"  # really a PNG
    path.write_bytes(encode(draw()))
    assert np.array_equal(read_image(path), draw())
    assert np.array_equal(read_image(str(path)), draw())


def test_read_image_applies_exif_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    data = encode(Image.new("L", (40, 20), 255), "JPEG", exif=exif)
    assert read_image(data).shape == (40, 20)


@pytest.mark.parametrize("data, message", [
    (b"hello, this is not an image", "not an image"),
    (b"", "empty"),
    (encode(draw())[:300], "corrupt or truncated"),
    (b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES), "MB"),
], ids=["text", "empty", "truncated", "too-large"])
def test_read_image_refuses_bad_bytes(data, message):
    with pytest.raises(ImageError, match=message):
        read_image(data)


def test_read_image_refuses_too_many_pixels():
    side = int(MAX_PIXELS**0.5) + 100
    data = encode(Image.new("1", (side, side)))  # a few kB that would decode to ~17 MP
    assert len(data) < MAX_UPLOAD_BYTES
    with pytest.raises(ImageError, match="megapixels"):
        read_image(data)


def test_read_image_refuses_animation():
    a, b = Image.fromarray(draw()), Image.fromarray(255 - draw())
    with pytest.raises(ImageError, match="Animated"):
        read_image(encode(a, "GIF", save_all=True, append_images=[b]))
    assert read_image(encode(a, "GIF")).shape[:2] == (280, 280)  # one frame is fine


def test_read_image_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        read_image(tmp_path)
    big = tmp_path / "big.png"
    big.write_bytes(bytes(MAX_UPLOAD_BYTES + 1))
    with pytest.raises(ImageError, match="MB"):
        read_image(big)


def test_drawn_set_is_seeded_and_every_style_reads_the_same(mnist):
    from core.drawn import STYLES, Drawing, plan, render, styled

    assert plan(50, seed=1) == plan(50, seed=1) and plan(50, seed=1) != plan(50, seed=2)
    (_, _), (x_test, _) = mnist
    d = Drawing(index=0, size=0.4, stroke=1.5, angle=10.0, style="white_on_black")
    ink = render(x_test[0], d, np.random.default_rng(0))
    assert ink.shape == (280, 280) and 0.3 * 280 < bbox(ink)[0] < 0.5 * 280
    outputs = [to_mnist(styled(ink, style)) for style in STYLES]
    for out in outputs[1:]:
        assert np.abs(out - outputs[0]).max() < 0.02


def test_drawn_validation_split_redraws_validation_digits(mnist):
    """--split val (for choosing training settings) draws from the validation images, never the test set."""
    from core.data import splits
    from core.drawn import evaluate, source_digits

    _, val, _ = splits(mnist)
    x, y = source_digits(mnist, "val")
    assert x.dtype == np.uint8 and x.shape == (len(val), 28, 28)
    np.testing.assert_array_equal(x, mnist[0][0][-len(val):])
    np.testing.assert_array_equal(y, mnist[0][1][-len(val):])
    with pytest.raises(ValueError, match="split"):
        source_digits(mnist, "train")

    labels = {img.tobytes(): label for img, label in zip(x, y)}

    class Oracle:  # knows the validation digits by heart, and answers 0 to anything else
        def predict_proba(self, images):
            keys = (np.round(im * 255).astype(np.uint8).tobytes() for im in images)
            return np.eye(10, dtype=np.float32)[[labels.get(k, 0) for k in keys]]

    quiet = {"n": 20, "data": mnist, "log": lambda s: None, "tta": False}  # it knows the digits, not their warps
    r = evaluate({"oracle": Oracle()}, split="val", **quiet)
    assert r["split"] == "val" and r["models"]["oracle"]["mnist_test"] == 1.0
    assert evaluate({"oracle": Oracle()}, **quiet)["models"]["oracle"]["mnist_test"] < 0.5


# --- deslanting and test-time augmentation ----------------------------------------------------


def bar(top, bottom, width=2.5):
    """A straight pen stroke from (row 4, column ``top``) to (row 23, column ``bottom``) as a float 28x28."""
    from core.styles import stroke

    return stroke((4, top), (23, bottom), width)


@pytest.mark.parametrize("top, bottom", [(18, 10), (9, 17), (16, 11)])
def test_deslant_straightens_a_slanted_bar(top, bottom):
    x = bar(top, bottom)
    assert abs(slant(x)[0] - (top - bottom) / 19) < 0.05  # the moments read the slope
    d = deslant(x)
    assert d.shape == x.shape and d.dtype == np.float32 and d.min() >= 0 and d.max() <= 1
    cols = np.nonzero(d > 0.5)[1]
    assert np.ptp(cols) <= 2  # upright: at most a stroke width across
    assert abs(slant(d)[0]) < 0.02
    np.testing.assert_allclose(d.sum(), x.sum(), rtol=0.02)
    assert abs(centre_of_mass(d)[0] - centre_of_mass(x)[0]) < 0.1  # it shears about the centre of mass


def test_deslant_leaves_upright_digits_and_batches_alone():
    up = bar(14, 14)
    np.testing.assert_allclose(deslant(up), up, atol=1e-5)
    batch = np.stack([bar(18, 10), up, bar(9, 17)])
    out = deslant(batch)
    assert out.shape == (3, 28, 28)
    for one, many in zip(batch, out):
        np.testing.assert_allclose(deslant(one), many, atol=1e-6)


def test_tta_views_of_a_batch_are_each_digits_own(mnist):
    from core.pixels import TTA_WARPS, views

    x = mnist[1][0][:6].astype(np.float32) / 255
    batch = views(x)  # shared maps, one per warp
    assert batch.shape == (6, len(TTA_WARPS), 28, 28)
    for i in range(6):  # one digit at a time: a map per copy
        np.testing.assert_allclose(views(x[i:i + 1])[0], batch[i], atol=1e-6)
    assert not np.allclose(batch[:, 1], batch[:, 0])  # the warps did something


def test_tta_probabilities_sum_to_one_and_the_image_is_unwarped(committed_models):
    from core.predict import TTA_WARPS, predict_image, tta_views

    image = draw()
    plain = predict_image(image, committed_models, tta=False)
    tta = predict_image(image, committed_models)  # the default: the Draw page's reading
    np.testing.assert_array_equal(plain["image"], tta["image"])
    for name, p in tta["predictions"].items():
        assert p["probs"].shape == (10,) and (p["probs"] >= 0).all()
        assert abs(p["probs"].sum() - 1) < 1e-6
        assert p["digit"] == int(p["probs"].argmax())
        assert not np.allclose(p["probs"], plain["predictions"][name]["probs"])  # the warps did something
    views = tta_views(plain["image"])
    assert views.shape == (len(TTA_WARPS), 28, 28) and views.min() >= 0 and views.max() <= 1
    np.testing.assert_allclose(views[0], plain["image"], atol=1e-6)  # the first view is the digit itself
