"""Tampered artifacts through the pages (AppTest): values that parse but cannot be true, a manifest of
the wrong shape, predictions outside 0-9, two models' network files swapped. Each page that reads the
file says which file and how to recreate it, in an error box, never an exception; the other models and
the other pages keep working."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import SPECS

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "dashboard" / "Home.py")
RETRAIN = "python -m core.train"
pytestmark = pytest.mark.usefixtures("fresh_caches")


@pytest.fixture
def art(own_artifacts):
    return own_artifacts


def run(page: str | None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=90).run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


METRICS = {
    "NaN": lambda m: m | {"test_accuracy": float("nan")},
    "infinity": lambda m: m | {"test_loss": float("inf")},
    "huge": lambda m: m | {"train_seconds": 1e300 * 1e10},
    "text": lambda m: m | {"errors": "many"},
    "500 percent": lambda m: m | {"test_accuracy": 5.0},
}


@pytest.mark.parametrize("page", [None, "results"], ids=["home", "results"])
@pytest.mark.parametrize("case", list(METRICS))
def test_impossible_metrics(art, page, case):
    edit_json(art / "keras_mlp" / "metrics.json", METRICS[case])
    at = run(page)
    assert str(art / "keras_mlp" / "metrics.json") in errors(at) and RETRAIN in errors(at)
    table = at.dataframe[0].value  # the accuracy table: the other two models, figures intact
    assert list(table["Model"]) == [SPECS["numpy_mlp"].title, SPECS["lenet"].title]
    assert table["Test accuracy"].between(0, 100).all()


MANIFEST = {
    "a list": lambda m: [m],
    "models as text": lambda m: m | {"models": "all three"},
    "seed as text": lambda m: m | {"seed": "zero"},
    "created as a number": lambda m: m | {"created": 2026},
}


@pytest.mark.parametrize("page", [None, "results"], ids=["home", "results"])
@pytest.mark.parametrize("case", list(MANIFEST))
def test_manifest_of_the_wrong_shape(art, page, case):
    edit_json(art / "manifest.json", MANIFEST[case])
    at = run(page)
    assert str(art / "manifest.json") in errors(at)
    assert len(at.dataframe[0].value) == 3  # every model's figures still shown
    run("training_curves")  # and another page still works


def test_predictions_outside_0_to_9(art):
    path = art / "lenet" / "predictions.npz"
    with np.load(path) as f:
        p = {k: f[k] for k in f.files}
    p["pred"][:10] = 12
    np.savez_compressed(path, **p)
    at = run("misclassified")
    assert str(path) in errors(at) and "outside 0 to 9" in errors(at)
    cards = [m.value for m in at.markdown if m.value.startswith("**True ")]
    assert cards and all(SPECS["lenet"].short not in c for c in cards)  # the other two models' mistakes
    assert all(SPECS["numpy_mlp"].short in c for c in cards)


def test_swapped_keras_files_on_the_inside_page(art):
    a, b = art / "keras_mlp" / "model.keras", art / "lenet" / "model.keras"
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(a_bytes)
    at = run("inside")
    at.session_state["inside_tab"] = "Weights"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    for path in (a, b):
        assert str(path) in errors(at) and "swapped" in errors(at)
    headings = [m.value for m in at.markdown if m.value.startswith("##### ")]
    assert headings == [f"##### {SPECS['numpy_mlp'].title}"]  # the Weights tab shows the one usable model
