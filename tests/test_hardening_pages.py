"""Issue #15 through the pages (AppTest): no page shows a model's figures under another model's name, and
the Draw page's wording and layout. (Values out of range, e.g. an accuracy of 5.0 shown as 500%, are
refused since format 2: tests/test_app_damaged.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import SPECS
from dashboard.charts import read_answer_cards

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "dashboard" / "Home.py")
pytestmark = pytest.mark.usefixtures("fresh_caches")
A, B = "keras_mlp", "lenet"  # the two swapped; numpy_mlp stays as it is


def run(page: str, setup=None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=90).run()
    if page != "home":
        at.switch_page(f"views/{page}.py")
        if setup:
            setup(at)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def swap(art: Path, filename: str | None, pair: tuple[str, str] = (A, B)) -> None:
    """Swap two models' folders (``filename`` None) or one file of theirs: A's and B's unless ``pair`` says."""
    x, y = pair
    a, b = (art / x, art / y) if filename is None else (art / x / filename, art / y / filename)
    tmp = art / "swapping"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def table_models(at: AppTest, column: str) -> list[str]:
    return next(list(d.value["Model"]) for d in at.dataframe if column in d.value.columns)


def show_an_example(at: AppTest) -> None:
    at.session_state["source"] = "Test-set example"


SHOWN = {  # page -> (set up before the run, the models it still shows)
    "home": (None, lambda at: table_models(at, "Test accuracy")),
    "results": (None, lambda at: table_models(at, "Test accuracy")),
    "training_curves": (None, lambda at: table_models(at, "Per epoch")),
    "misclassified": (None, lambda at: [s.title for s in SPECS.values()
                                        if any(f"{s.short} **" in m.value for m in at.markdown
                                               if m.value.startswith("**True "))]),
    "draw": (show_an_example, lambda at: list(read_answer_cards(*(h.proto.body for h in at.get("html"))))),
}
# A history tells its model only by its epochs and learning-rate schedule, and the tiny artifacts train every
# model 2 epochs, the Keras MLP and LeNet both at Adam 2e-3: their histories are swapped with the NumPy MLP's.
CASES = [(page, None, (A, B)) for page in SHOWN] + [
    ("training_curves", "history.json", ("numpy_mlp", A)),  # [shown under each other's names]
    ("misclassified", "predictions.npz", (A, B)),
    ("misclassified", "misclassified.npz", (A, B)),
    ("draw", "model.keras", (A, B)),
]


@pytest.mark.parametrize("page, filename, pair", CASES, ids=[f"{p}-{f or 'folders'}" for p, f, _ in CASES])
def test_swapped_models_are_never_shown_under_the_wrong_name(own_artifacts, page, filename, pair):
    """[Two model folders swapped showed swapped figures on Home, Results and Training.] Every page refuses
    both swapped models, naming their files, and shows the third."""
    swap(own_artifacts, filename, pair)
    setup, shown = SHOWN[page]
    at = run(page, setup)
    for name in pair:
        assert str(own_artifacts / name) in errors(at), errors(at)
    assert "swapped" in errors(at)
    third = next(name for name in SPECS if name not in pair)
    assert shown(at) == [SPECS[third].title], shown(at)


def test_swapped_predictions_are_left_out_of_the_agreement(own_artifacts):
    """Results: the accuracy table reads metrics (right); the agreement section reads the swapped predictions
    and must refuse them."""
    swap(own_artifacts, "predictions.npz")
    at = run("results")
    assert len(table_models(at, "Test accuracy")) == 3
    for name in (A, B):
        assert str(own_artifacts / name / "predictions.npz") in errors(at)
    assert any("at least two" in i.value for i in at.info)


# --- the Draw page ---------------------------------------------------------------------------------------
def png_bytes(a) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def upload(at: AppTest, data: bytes) -> AppTest:
    at.segmented_control(key="source").set_value("Upload an image").run()
    at.file_uploader(key="upload").set_value(("upload.png", data, "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_noise_is_said_not_to_be_a_digit_on_the_draw_page(artifacts):
    """[Noise: 92% "8", with a green "All three models agree".] A warning says it is not a digit; the models'
    guesses are still there to see."""
    import numpy as np

    from core.ood import NOT_A_DIGIT

    at = upload(run("draw"), png_bytes(np.random.default_rng(0).integers(0, 256, (280, 280, 3), dtype=np.uint8)))
    warnings = " ".join(w.value for w in at.warning)
    assert NOT_A_DIGIT in warnings and not at.success
    assert len(read_answer_cards(*(h.proto.body for h in at.get("html")))) == 3


def test_one_model_loaded_is_named_not_agreed_with(own_artifacts):
    """["The model agree" when one model loads.] The banner names the one model that answered."""
    import numpy as np

    for name in ("numpy_mlp", "keras_mlp"):
        (own_artifacts / name / "settings.json").unlink()
    with np.load(own_artifacts / "sample.npz") as f:
        digit = f["images"][0]
    at = upload(run("draw"), png_bytes(np.kron(255 - digit, np.ones((6, 6), np.uint8))))
    banner = " ".join(m.value for m in [*at.success, *at.warning])
    assert f"{SPECS['lenet'].title} (the only model that loaded) says" in banner, banner
    assert "agree" not in banner
