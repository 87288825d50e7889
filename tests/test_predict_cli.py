"""core.predict: one call from image to three answers, and the command line around it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core import MODELS, SPECS, load_models
from core.predict import agreement, main, predict_image
from core.preprocess import ImageError, NoDigit

ROOT = Path(__file__).resolve().parent.parent


def drawing(shift=0, pen=12):
    im = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(im).line([(60 + shift, 50), (200, 50), (110, 230)], fill=255, width=pen)  # a 7
    return np.asarray(im)


def png(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def models(tiny_artifacts):
    from core import load_models

    return load_models(tiny_artifacts)


@pytest.fixture
def files(tmp_path):
    """A good drawing as PNG and JPEG, a blank image, a corrupt PNG, a text file, a missing path."""
    good = tmp_path / "seven.png"
    good.write_bytes(png(drawing()))
    jpeg = tmp_path / "seven_on_paper.jpeg"
    Image.fromarray(255 - drawing()).save(jpeg, "JPEG")
    blank = tmp_path / "blank.png"
    blank.write_bytes(png(np.full((280, 280), 255, np.uint8)))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(png(drawing())[:200])
    text = tmp_path / "notes.png"
    text.write_text("not an image at all\n")
    return {"good": good, "jpeg": jpeg, "blank": blank, "corrupt": corrupt, "text": text,
            "missing": tmp_path / "missing.png"}


# --- predict_image ---------------------------------------------------------------------------


def test_predict_image_returns_every_model_in_order(models):
    result = predict_image(drawing(), models)
    assert result["image"].shape == (28, 28) and result["image"].dtype == np.float32
    assert list(result["predictions"]) == list(MODELS)
    for p in result["predictions"].values():
        assert p["probs"].shape == (10,) and abs(p["probs"].sum() - 1) < 1e-4
        assert isinstance(p["digit"], int) and p["digit"] == int(p["probs"].argmax())


def test_predict_image_takes_arrays_bytes_and_paths(models, files):
    from_array = predict_image(drawing(), models)
    for source in (files["good"], str(files["good"]), files["good"].read_bytes()):
        result = predict_image(source, models)
        assert np.array_equal(result["image"], from_array["image"])
        for name in MODELS:
            assert np.allclose(result["predictions"][name]["probs"], from_array["predictions"][name]["probs"], atol=1e-6)


def test_predict_image_refuses_blank_and_broken(models, files):
    with pytest.raises(NoDigit):
        predict_image(np.zeros((280, 280, 4), np.uint8), models)
    with pytest.raises(NoDigit):
        predict_image(files["blank"], models)
    for bad in ("corrupt", "text", "missing"):
        with pytest.raises(ImageError):
            predict_image(files[bad], models)


def test_predict_image_is_thread_safe(models):
    images = [drawing(shift=s, pen=p) for s in (0, 30, 60) for p in (4, 12, 30)]
    expected = [predict_image(im, models) for im in images]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda im: predict_image(im, models), images * 3))
    for want, have in zip(expected * 3, got):
        assert np.array_equal(want["image"], have["image"])
        for name in MODELS:
            assert np.allclose(want["predictions"][name]["probs"], have["predictions"][name]["probs"], atol=1e-5)


def test_agreement():
    same = {"predictions": {n: {"digit": 3} for n in MODELS}}
    assert agreement(same) == 3
    same["predictions"]["lenet"] = {"digit": 8}
    assert agreement(same) is None


# --- the command line ------------------------------------------------------------------------


def test_cli_json_one_line_per_image_and_bad_files_do_not_stop_the_rest(tiny_artifacts, files, capsys):
    order = ["corrupt", "good", "blank", "text", "jpeg", "missing"]
    code = main([str(files[k]) for k in order] + ["--json", "--artifacts", str(tiny_artifacts)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert [line["path"] for line in lines] == [str(files[k]) for k in order]
    for key, line in zip(order, lines):
        if key in ("good", "jpeg"):
            assert set(line) == {"path", "predictions", "unusual"} and list(line["predictions"]) == list(MODELS)
            for p in line["predictions"].values():
                assert len(p["probs"]) == 10 and p["digit"] == int(np.argmax(p["probs"]))
        else:
            assert set(line) == {"path", "error"} and line["error"]
    errors = {k: line.get("error", "") for k, line in zip(order, lines)}
    assert "Nothing drawn" in errors["blank"] and "corrupt" in errors["corrupt"]
    assert "not an image" in errors["text"] and "not found" in errors["missing"]


def test_cli_text_output_and_success_code(tiny_artifacts, files, capsys):
    code = main([str(files["good"]), str(files["jpeg"]), "--artifacts", str(tiny_artifacts)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count(str(files["good"])) == 1 and out.count(str(files["jpeg"])) == 1
    for title in (s.title for s in SPECS.values()):
        assert out.count(title) == 2
    assert out.count("agree") == 2  # "all models agree: d" or "the models disagree", per image


@pytest.mark.parametrize("argv, tta", [([], True), (["--one-reading"], False)])
def test_cli_reads_as_the_draw_page_unless_told_once(tiny_artifacts, files, capsys, argv, tta):
    assert main([str(files["good"]), "--json", "--artifacts", str(tiny_artifacts), *argv]) == 0
    line = json.loads(capsys.readouterr().out)
    expected = predict_image(str(files["good"]), load_models(tiny_artifacts), tta=tta)["predictions"]
    for name, p in line["predictions"].items():
        np.testing.assert_allclose(p["probs"], expected[name]["probs"], atol=1e-6)


def test_cli_missing_artifacts_is_a_clear_error(tmp_path):
    image = tmp_path / "x.png"
    image.write_bytes(png(drawing()))
    run = subprocess.run([sys.executable, "-m", "core.predict", str(image), "--artifacts", str(tmp_path / "none")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2
    assert "cannot load the models" in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""



def test_cli_corrupt_artifacts_is_a_clear_error(tiny_artifacts, tmp_path, files, capsys):
    import shutil

    broken = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, broken)
    (broken / "lenet" / "model.keras").write_bytes(b"not a keras archive")
    assert main([str(files["good"]), "--artifacts", str(broken)]) == 2
    captured = capsys.readouterr()
    assert "cannot load the models" in captured.err and "model.keras" in captured.err
    assert captured.out == ""
