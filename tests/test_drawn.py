"""python -m core.drawn as a command: --n is refused outside 1 to the split's size with an argparse
error, a run reports its progress on stderr while it draws, and plain MNIST is read the way the
drawings are."""

import re
from pathlib import Path

import pytest

import core
import core.data
from core.drawn import main, plan, prepare

ROOT = Path(__file__).resolve().parent.parent
PROGRESS = re.compile(r"drawn and prepared (\d+) of (\d+) digits \(\d+%\), \d+\.\d s")


def not_called(*args, **kwargs):
    raise AssertionError("the command went on after a bad --n")


@pytest.mark.parametrize("n, words", [("0", "0 digits: draw at least 1"), ("-5", "-5 digits: draw at least 1"),
                                      ("ten", "'ten' is not a whole number")])
def test_n_below_one_is_refused_before_anything_loads(n, words, capsys, monkeypatch):
    monkeypatch.setattr(core.data, "load_mnist", not_called)
    with pytest.raises(SystemExit) as e:
        main(["--n", n])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument --n: {words}" in err and "Traceback" not in err


@pytest.mark.parametrize("split, n, size", [("test", 10_001, "10,000"), ("val", 5_001, "5,000")])
def test_n_beyond_the_split_is_refused_before_the_models_load(split, n, size, mnist, capsys, monkeypatch):
    monkeypatch.setattr(core.data, "load_mnist", lambda data_dir=None: mnist)
    monkeypatch.setattr(core, "load_models", not_called)
    with pytest.raises(SystemExit) as e:
        main(["--n", str(n), "--split", split])
    assert e.value.code == 2
    assert f"error: argument --n: the {split} split holds {size} digits" in capsys.readouterr().err


def test_progress_is_printed_while_drawing(mnist, capsys, monkeypatch):
    """The committed models on 20 digits: ten progress lines on stderr, then the table on stdout."""
    monkeypatch.setattr(core.data, "load_mnist", lambda data_dir=None: mnist)
    assert main(["--n", "20", "--artifacts", str(ROOT / "artifacts")]) == 0
    out, err = capsys.readouterr()
    done = [(int(a), int(b)) for a, b in PROGRESS.findall(err)]
    assert done == [(k, 20) for k in range(2, 21, 2)], err
    assert "Drew and prepared 20 digits" in err and all(f"scored {name}" in err for name in core.MODELS)
    assert all(s.title in out for s in core.SPECS.values()) and "nan" not in out


def test_prepare_reports_about_every_tenth_and_the_last(mnist):
    x_test = mnist[1][0]
    calls = []
    prepare(x_test, plan(15, 0, len(x_test)), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 15) for k in (2, 4, 6, 8, 10, 12, 14, 15)]


@pytest.mark.parametrize("tta, key", [(True, "tta_test_accuracy"), (False, "test_accuracy")])
def test_plain_mnist_is_read_the_way_the_drawings_are(mnist, committed_models, tta, key):
    """The figure the drawn digits are held against is MNIST test read the same way: with the Draw page's
    test-time augmentation (the default) or once, as metrics.json recorded each."""
    from core import artifacts
    from core.drawn import evaluate

    model = {"numpy_mlp": committed_models["numpy_mlp"]}
    r = evaluate(model, n=20, data=mnist, log=lambda s: None, tta=tta)
    assert r["tta"] is tta
    assert r["models"]["numpy_mlp"]["mnist_test"] == artifacts.read("metrics", "numpy_mlp")[key]
