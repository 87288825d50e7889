"""End to end: train on a real subset through the CLI and the function, and check what was written."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from core import artifacts, load_models
from core.data import scale
from core.models.numpy_mlp import NumpyMLPSettings
from core.train import train

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "core.train", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--models", "--epochs", "--subset", "--data-dir", "--out", "--seed", "--seeds", "--jobs", "--no-augment",
                 "--rotate", "--shear", "--scale", "--shift", "--stroke"):
        assert flag in out.stdout


def test_cli_rejects_bad_arguments():
    out = subprocess.run([sys.executable, "-m", "core.train", "--models", "resnet"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice" in out.stderr
    out = subprocess.run([sys.executable, "-m", "core.train", "--rotate", "120"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "--rotate must be between 0 and 90" in out.stderr


def test_cli_bad_data_dir_is_a_clear_error(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "core.train", "--models", "numpy_mlp", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "a")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert out.returncode == 2
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "a").exists()


def test_cli_tiny_run_writes_every_artifact(tmp_path, mnist):
    out = subprocess.run(
        [sys.executable, "-m", "core.train", "--models", "numpy_mlp", "--subset", "500", "--epochs", "1", "--seeds", "1",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "epoch  1" in out.stdout and "test accuracy" in out.stdout
    names = {p.name for p in (tmp_path / "numpy_mlp").iterdir()}
    assert names == {"settings.json", "history.json", "weights.npz", "metrics.json", "predictions.npz", "misclassified.npz",
                     "seeds.npz"}
    manifest = artifacts.read("manifest", folder=tmp_path)
    assert manifest["models"]["numpy_mlp"]["subset"] == 500 and len(manifest["data_checksum"]) == 64
    assert manifest["models"]["numpy_mlp"]["machine"].endswith(f", {os.cpu_count()} CPUs")  # what its times are from
    saved = artifacts.read("settings", "numpy_mlp", tmp_path)["settings"]["train"]
    assert saved["epochs"] == 1 and saved["augmentation"]["rotate"] == 20  # what the run used, the defaults
    default = f"epochs={NumpyMLPSettings().train.epochs}"
    assert "epochs=1" in out.stdout and default not in out.stdout  # it prints the settings it really uses


def test_cli_refuses_an_out_that_is_not_an_artifacts_folder(tmp_path):
    """--out some.png must not turn the PNG into a folder; --out ~ must not copy a home directory."""
    png = tmp_path / "some.png"
    png.write_bytes(b"\x89PNG not really")
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    for out in (png, home):
        run = subprocess.run([sys.executable, "-m", "core.train", "--models", "numpy_mlp", "--subset", "200",
                              "--epochs", "1", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
        assert run.returncode == 2 and "not an artifacts folder" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
    assert png.read_bytes() == b"\x89PNG not really"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "some.png"]  # no staging copy left
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt", "photos"]


def test_augmentation_strength_is_a_training_option(tmp_path, mnist, monkeypatch):
    """--rotate etc. reach the training loop and the saved settings, so a reloaded model knows them."""
    import core.models.base as base
    from core.augment import Augment

    calls, real = [], base.augment
    monkeypatch.setattr(base, "augment",
                        lambda x, rng, a=Augment(), labels=None: calls.append(a) or real(x, rng, a, labels=labels))
    strength = Augment(rotate=5, shear=0, scale=0.05, shift=1, stroke=0)
    train(["numpy_mlp"], epochs=2, subset=500, out=tmp_path / "a", log=lambda s: None, augmentation=strength)
    train(["numpy_mlp"], epochs=1, subset=500, out=tmp_path / "b", log=lambda s: None, augment=False)
    # two epochs with augmentation, none without; the NumPy MLP's last one at its gentler strength
    assert calls == [strength, strength.scaled(NumpyMLPSettings().train.gentle_strength)]
    a = load_models(tmp_path / "a", ["numpy_mlp"])["numpy_mlp"].settings.train
    b = load_models(tmp_path / "b", ["numpy_mlp"])["numpy_mlp"].settings.train
    assert a.augment and a.augmentation == strength and a.epochs == 2
    assert not b.augment


def test_augmentation_flags_replace_only_the_strengths_they_name():
    """Each model keeps its own augmentation (the MLPs are taught all three style strokes, LeNet the slash and
    the crossbar);
    a flag such as --rotate 5 changes that one strength for every model and nothing else, in this
    process and in a multi-seed run's workers alike."""
    from core.models import MODELS, model_class
    from core.train import parse_args, settings_for, worker_command

    own = {name: model_class(name).Settings().train.augmentation for name in MODELS}
    assert own["numpy_mlp"].styles == own["keras_mlp"].styles == own["lenet"].styles == 0.3
    assert own["numpy_mlp"].style_digits == own["keras_mlp"].style_digits == "017" and own["lenet"].style_digits == "07"
    args = parse_args(["--rotate", "5"])
    assert args.augmentation == {"rotate": 5.0}
    for name in MODELS:
        a = settings_for(name, augmentation=args.augmentation).train.augmentation
        assert a.rotate == 5 and a.styles == own[name].styles and a.shear == own[name].shear
        assert settings_for(name).train.augmentation == own[name]  # no flags: the model's own settings
    cmd = worker_command(ROOT, {"epochs": None, "subset": None, "data_dir": None, "augment": None,
                                "augmentation": args.augmentation})
    assert cmd[cmd.index("--rotate") + 1] == "5.0" and "--styles" not in cmd
    assert parse_args([]).augmentation == {}
    args = parse_args(["--style-digits", "0"])  # which digits are restyled: a string, passed on as one
    assert args.augmentation == {"style_digits": "0"}
    assert all(settings_for(name, augmentation=args.augmentation).train.augmentation.style_digits == "0"
               for name in MODELS)
    cmd = worker_command(ROOT, {"epochs": None, "subset": None, "data_dir": None, "augment": None,
                                "augmentation": args.augmentation})
    assert cmd[cmd.index("--style-digits") + 1] == "0"
    assert parse_args(cmd[cmd.index("--worker"):]).augmentation == {"style_digits": "0"}  # the worker reads it back
    for bad in ("4", "0x"):
        with pytest.raises(SystemExit):
            parse_args(["--style-digits", bad])
    assert own["lenet"].seven_tip == 5 and own["numpy_mlp"].seven_tip == own["keras_mlp"].seven_tip == 180
    args = parse_args(["--seven-tip", "10"])  # a field of two words: one dashed flag, there and back
    assert args.augmentation == {"seven_tip": 10.0}
    cmd = worker_command(ROOT, {"epochs": None, "subset": None, "data_dir": None, "augment": None,
                                "augmentation": args.augmentation})
    assert parse_args(cmd[cmd.index("--worker"):]).augmentation == {"seven_tip": 10.0}
    with pytest.raises(SystemExit):
        parse_args(["--seven-tip", "200"])


def test_subset_training_reaches_sensible_accuracy(tiny_artifacts, mnist):
    """2 epochs on 2,000 real images: far above chance (10%) for every model, and the files agree."""
    x_test = scale(mnist[1][0])
    y_test = mnist[1][1]
    for name, model in load_models(tiny_artifacts).items():
        metrics = artifacts.read("metrics", name, tiny_artifacts)
        assert metrics["test_accuracy"] > 0.5, name
        pred = model.predict_proba(x_test).argmax(1)
        assert metrics["errors"] == int(np.sum(pred != y_test))
        mis = artifacts.read("misclassified", name, tiny_artifacts)
        assert len(mis["index"]) == metrics["errors"]
        np.testing.assert_array_equal(mis["image"][0], mnist[1][0][mis["index"][0]])
        assert np.all(mis["pred"] != mis["label"])
        assert np.array(metrics["confusion"]).sum() == 10000


def test_training_one_model_keeps_the_others(tmp_path, tiny_artifacts, mnist):
    import shutil

    out = tmp_path / "art"
    shutil.copytree(tiny_artifacts, out)
    before = (out / "lenet" / "model.keras").read_bytes()
    train(["numpy_mlp"], epochs=1, subset=300, out=out, log=lambda s: None)
    assert (out / "lenet" / "model.keras").read_bytes() == before
    assert artifacts.read("metrics", "numpy_mlp", out)["train_size"] == 300


def test_failed_run_leaves_previous_artifacts(tmp_path, tiny_artifacts, mnist, monkeypatch):
    import shutil

    out = tmp_path / "art"
    shutil.copytree(tiny_artifacts, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("core.train.evaluate", boom)
    with pytest.raises(RuntimeError):
        train(["numpy_mlp"], epochs=1, subset=300, out=out, log=lambda s: None)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["art"]  # no staging folder left behind


def test_training_flags_change_only_the_settings_they_name():
    """--gentle-share, --gentle-strength and --sam change that TrainSettings field for every model, leave the rest
    as each model's own, reach a multi-seed run's workers, and are refused outside their bounds."""
    from core.models import MODELS, model_class
    from core.train import parse_args, settings_for, worker_command

    args = parse_args(["--gentle-share", "0", "--sam", "0.1"])
    assert args.training == {"gentle_share": 0.0, "sam": 0.1} and args.augmentation == {}
    for name in MODELS:
        own = model_class(name).Settings().train
        t = settings_for(name, training=args.training).train
        assert (t.gentle_share, t.sam) == (0.0, 0.1)
        assert (t.gentle_strength, t.epochs, t.lr, t.augmentation) == (own.gentle_strength, own.epochs, own.lr,
                                                                        own.augmentation)
        assert settings_for(name).train == dataclasses.replace(own, seed=0)  # no flags: the model's own
    cmd = worker_command(ROOT, {"epochs": None, "subset": None, "data_dir": None, "augment": None,
                                "augmentation": {}, "training": args.training})
    assert parse_args(cmd[cmd.index("--worker"):]).training == args.training  # the worker reads them back
    assert parse_args([]).training == {}
    for bad in (["--sam", "2"], ["--gentle-share", "-0.1"], ["--gentle-strength", "1.5"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_a_run_with_a_training_flag_saves_what_it_used(tmp_path, mnist):
    out = subprocess.run(
        [sys.executable, "-m", "core.train", "--models", "numpy_mlp", "--subset", "300", "--epochs", "2", "--seeds", "1",
         "--gentle-share", "0", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    saved = artifacts.read("settings", "numpy_mlp", tmp_path)["settings"]["train"]
    assert saved["gentle_share"] == 0 and NumpyMLPSettings().train.gentle_share == 0.5
    assert saved["gentle_strength"] == NumpyMLPSettings().train.gentle_strength
