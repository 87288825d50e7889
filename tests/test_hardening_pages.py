"""Issue #15 through the pages (AppTest): no page shows a model's figures under another model's name, and
the Draw page's wording and layout. (Values out of range, e.g. an accuracy of 5.0 shown as 500%, are
refused since format 2: tests/test_app_damaged.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import SPECS

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


def swap(art: Path, filename: str | None) -> None:
    """Swap A's and B's folders (``filename`` None) or one file of theirs."""
    a, b = (art / A, art / B) if filename is None else (art / A / filename, art / B / filename)
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
    "draw": (show_an_example, lambda at: [m.label for m in at.metric]),
}
CASES = [(page, None) for page in SHOWN] + [
    ("training_curves", "history.json"),  # [shown under each other's names]
    ("misclassified", "predictions.npz"),
    ("misclassified", "misclassified.npz"),
    ("draw", "model.keras"),
]


@pytest.mark.parametrize("page, filename", CASES, ids=[f"{p}-{f or 'folders'}" for p, f in CASES])
def test_swapped_models_are_never_shown_under_the_wrong_name(own_artifacts, page, filename):
    """[Two model folders swapped showed swapped figures on Home, Results and Training.] Every page refuses
    both swapped models, naming their files, and shows the third."""
    swap(own_artifacts, filename)
    setup, shown = SHOWN[page]
    at = run(page, setup)
    for name in (A, B):
        assert str(own_artifacts / name) in errors(at), errors(at)
    assert "swapped" in errors(at)
    assert shown(at) == [SPECS["numpy_mlp"].title], shown(at)


def test_swapped_predictions_are_left_out_of_the_agreement(own_artifacts):
    """Results: the accuracy table reads metrics (right); the agreement section reads the swapped predictions
    and must refuse them."""
    swap(own_artifacts, "predictions.npz")
    at = run("results")
    assert len(table_models(at, "Test accuracy")) == 3
    for name in (A, B):
        assert str(own_artifacts / name / "predictions.npz") in errors(at)
    assert any("at least two" in i.value for i in at.info)
