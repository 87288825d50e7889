"""``python -m core.calibrate``: the saved models' temperatures fitted again, and nothing else touched."""

from __future__ import annotations

import json

import pytest

from core import MODELS
from core import artifacts as art
from core.calibrate import main

TTA_KEYS = ("val_ece_tta_before", "val_ece_tta_after", "test_ece_tta_after", "tta_temperature")


def test_recalibrating_fits_both_temperatures_again_and_leaves_the_rest(own_artifacts):
    files = {p: p.read_bytes() for p in own_artifacts.rglob("*") if p.is_file()}
    fitted = {n: json.loads((own_artifacts / n / "settings.json").read_text()) for n in MODELS}
    measured = {n: art.read("metrics", n, own_artifacts) for n in MODELS}
    for n in MODELS:  # as saved before test-time augmentation had a temperature
        meta = dict(fitted[n])
        del meta["tta_temperature"]
        (own_artifacts / n / "settings.json").write_text(json.dumps(meta))
        m = dict(measured[n])
        del m["tta_test_accuracy"]
        m["calibration"] = {k: v for k, v in m["calibration"].items() if k not in TTA_KEYS}
        art.write("metrics", m, own_artifacts, n)

    assert main(["--artifacts", str(own_artifacts)]) == 0
    for n in MODELS:  # the same validation digits and weights: the same fit
        meta = json.loads((own_artifacts / n / "settings.json").read_text())
        assert meta["tta_temperature"] == pytest.approx(fitted[n]["tta_temperature"], rel=1e-6)
        assert meta["temperature"] == pytest.approx(fitted[n]["temperature"], rel=1e-6)
        assert meta["settings"] == fitted[n]["settings"]
        m = art.read("metrics", n, own_artifacts)
        assert m["tta_test_accuracy"] == pytest.approx(measured[n]["tta_test_accuracy"])
        for key in TTA_KEYS:
            assert m["calibration"][key] == pytest.approx(measured[n]["calibration"][key], rel=1e-5)
        assert m["test_accuracy"] == measured[n]["test_accuracy"]
    for p, content in files.items():
        if p.name not in ("settings.json", "metrics.json"):
            assert p.read_bytes() == content, f"{p.relative_to(own_artifacts)} changed"


def test_without_the_data_it_says_so_and_changes_nothing(own_artifacts, tmp_path, capsys):
    files = {p: p.read_bytes() for p in own_artifacts.rglob("*") if p.is_file()}
    assert main(["--artifacts", str(own_artifacts), "--data-dir", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in own_artifacts.rglob("*") if p.is_file()} == files


def test_without_models_it_says_what_to_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["--artifacts", str(tmp_path / "empty")]) == 2
    assert "python -m core.train" in capsys.readouterr().err
