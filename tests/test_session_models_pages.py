"""A model trained in this session (dashboard.session) appears beside the committed three on the Home and
Results accuracy tables, the Draw page and the Misclassified page, labelled as this session's."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "dashboard" / "Home.py")
from core import SPECS  # noqa: E402
from dashboard.charts import read_answer_cards  # noqa: E402

TITLES = {name: spec.title for name, spec in SPECS.items()}
LABEL = "Your NumPy ANN #1"
ROW = f"{LABEL} (this session)"


pytestmark = pytest.mark.usefixtures("fresh_caches")


@dataclass
class FinishedJob:
    """What a core.jobs.TrainingJob holds once it is done."""

    model_name: str
    model: object
    metrics: dict | None
    predictions: dict | None
    misclassified: dict | None
    done: bool = True


@pytest.fixture(scope="module")
def entry(tiny_artifacts):
    """A session model built from the tiny NumPy network, with its artifacts as its results."""
    from core import artifacts as art
    from core import load_model
    from dashboard import session

    name = "numpy_mlp"
    job = FinishedJob(name, load_model(name, tiny_artifacts), art.read("metrics", name, tiny_artifacts),
                      art.read("predictions", name, tiny_artifacts), art.read("misclassified", name, tiny_artifacts))
    return session.Trained("session-1", LABEL, session.COLORS[0], job, False, "2026-11-21T10:00:00+00:00")


def with_job(entry, **changes):
    return replace(entry, job=replace(entry.job, **changes))


def run(page: str, *entries) -> AppTest:
    from dashboard import session

    at = AppTest.from_file(HOME, default_timeout=90).run()
    at.session_state[session.KEY] = {e.key: e for e in entries}
    at.session_state[session.COUNT_KEY] = len(entries)
    if page != "home":
        at.switch_page(f"views/{page}.py")
    return at.run()


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.mark.parametrize("page", ["results", "home"])
def test_accuracy_table_has_a_row_for_the_session_model(page, artifacts, entry):
    at = run(page, entry)
    no_errors(at)
    table = at.dataframe[0].value
    assert list(table["Model"]) == [*TITLES.values(), ROW]  # the committed rows first, unchanged
    row = table[table["Model"] == ROW].iloc[0]
    assert row["Test accuracy"] == pytest.approx(100 * entry.job.metrics["test_accuracy"])
    assert row["Errors"] == entry.job.metrics["errors"]
    assert row["Parameters"] == entry.job.metrics["params"]
    assert row["Write-up"] == row["Difference"] == "—"  # no write-up for the visitor's own model
    committed = table[table["Model"] == TITLES["numpy_mlp"]].iloc[0]
    assert committed["Write-up"] == "95.00%"
    assert "this session" in texts(at.caption)


def test_accuracy_table_leaves_out_a_session_model_without_metrics(artifacts, entry):
    at = run("results", replace(with_job(entry, metrics={}), key="session-2", label="Your broken #2"))
    no_errors(at)
    assert list(at.dataframe[0].value["Model"]) == list(TITLES.values())


def test_misclassified_offers_the_session_model(artifacts, entry):
    at = run("misclassified", entry)
    no_errors(at)
    pills = at.pills(key="models")
    assert pills.options == [*(s.short for s in SPECS.values()), LABEL]
    assert pills.value == list(TITLES)  # the committed three by default
    cards = [m.value for m in at.markdown if m.value.startswith("**True ")]
    assert cards and all(f"{LABEL} **" in card for card in cards)  # its answer on every card

    pills.set_value([entry.key]).run()
    no_errors(at)
    line = next(m.value for m in at.markdown if "digits that at least one model got wrong" in m.value)
    assert int(line.split("**")[1].replace(",", "")) == len(entry.job.misclassified["index"])
    cards = [m.value for m in at.markdown if m.value.startswith("**True ")]
    assert cards and all(f":red[✗ {LABEL} **" in card for card in cards)
    assert ROW in texts(at.caption)  # the closer look names it as this session's


def test_misclassified_skips_a_session_model_without_predictions(artifacts, entry):
    at = run("misclassified", with_job(entry, predictions=None, misclassified=None))
    no_errors(at)
    assert at.pills(key="models").options == ["NumPy ANN", "Keras ANN", "LeNet-5"]
    assert "no predictions" in texts(at.caption)


def test_draw_shows_the_session_models_prediction(artifacts, entry):
    at = run("draw", entry)
    at.segmented_control(key="source").set_value("Test-set example").run()
    no_errors(at)
    cards = read_answer_cards(*(h.proto.body for h in at.get("html")))
    assert set(cards) == {*TITLES.values(), ROW}
    assert cards[ROW] == cards[TITLES["numpy_mlp"]]  # the same network reads the same digit
    assert sum(h.proto.body.count('class="pbars"') for h in at.get("html")) == 4  # each model's probability bars
    assert "this session" in texts(at.caption)
    assert "drawn_digit" not in at.session_state  # a test digit is not the visitor's drawing


def test_draw_upload_leaves_the_digit_for_the_inside_page(artifacts, entry):
    import io

    from PIL import Image

    with np.load(artifacts / "sample.npz") as f:
        digit = f["images"][0]
    buf = io.BytesIO()
    Image.fromarray(np.kron(255 - digit, np.ones((6, 6), np.uint8))).save(buf, format="PNG")
    at = run("draw", entry)
    at.segmented_control(key="source").set_value("Upload an image").run()
    at.file_uploader(key="upload").set_value(("digit.png", buf.getvalue(), "image/png")).run()
    no_errors(at)
    assert ROW in read_answer_cards(*(h.proto.body for h in at.get("html")))
    assert at.session_state["drawn_digit"].shape == (28, 28)


def test_results_charts_include_the_session_model(artifacts, entry):
    import json

    def traces(at):
        return [t.get("name") for c in at.get("plotly_chart") for t in json.loads(c.proto.spec)["data"]]

    def titles(at):
        return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]

    at = run("results", entry)
    no_errors(at)
    assert ROW in traces(at)  # its line on the per-digit chart
    assert sum(t.startswith(LABEL) for t in titles(at)) == 1  # and its own confusion matrix
    broken = run("results", replace(with_job(entry, metrics={}), key="session-2", label="Your broken #2"))
    no_errors(broken)
    assert not any("broken" in str(t) for t in traces(broken) + titles(broken))
