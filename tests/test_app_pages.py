"""Every dashboard page under Streamlit's AppTest: what it shows comes from the artifacts, and missing,
partial or corrupt artifacts give a message naming the file and the command, never an exception."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import SPECS

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "dashboard" / "Home.py")
PAGES = ["home", "dataset", "training", "results", "calibration", "misclassified", "draw"]
FILES = {"training": "training_curves", "train": "train_a_model"}  # page -> views/ file, where they differ
TITLES = {name: spec.title for name, spec in SPECS.items()}
RETRAIN = "python -m core.train"

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard.charts import read_answer_cards  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_caches")


@pytest.fixture
def no_dataset(tmp_path, monkeypatch):
    """No MNIST files anywhere: no MNIST_DIR, no committed copy and an empty Keras cache."""
    import core.data

    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setattr(core.data, "COMMITTED_DIR", tmp_path / "no-committed-copy")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


def run(page: str) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=60).run()
    if page != "home":  # after a first run, so that pages are found by file whatever their URL
        at.switch_page(f"views/{FILES.get(page, page)}.py").run()
    return at


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def metrics_of(folder: Path, name: str) -> dict:
    return json.loads((folder / name / "metrics.json").read_text())


def predictions_of(folder: Path, name: str) -> dict:
    with np.load(folder / name / "predictions.npz") as f:
        return {k: f[k] for k in f.files}


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# --- Home ------------------------------------------------------------------------------------------
def test_captions_say_when_each_model_was_trained(own_artifacts):
    """Models retrained on another day may have trained on another machine: the caption names each day."""
    path = own_artifacts / "manifest.json"
    manifest = json.loads(path.read_text())
    for name, day in zip(SPECS, ("2026-12-06", "2026-12-06", "2026-11-22")):
        manifest["models"][name].update(subset=None, trained=f"{day}T08:00:00+00:00")
        manifest["models"][name].pop("machine")  # as runs before 2026-12-07 wrote it
    path.write_text(json.dumps(manifest))
    shorts = [spec.short for spec in SPECS.values()]
    for page in ("home", "results"):
        at = run(page)
        assert_no_exception(at)
        said = texts(at.caption)
        assert (f"{shorts[0]} and {shorts[1]} on 2026-12-06, {shorts[2]} on 2026-11-22" in said), said
    assert "may come from different machines" in texts(run("home").caption)  # the runs did not say which
    for name in SPECS:  # all on one day: that day, whenever the artifacts folder was written
        manifest["models"][name]["trained"] = "2026-12-06T08:00:00+00:00"
    path.write_text(json.dumps(manifest))
    said = texts(run("home").caption)
    assert "artifacts created 2026-12-06." in said and "machine" not in said


def test_captions_say_whether_training_times_come_from_one_machine(own_artifacts):
    """Each run records the machine it trained on, so the caption can say where the times come from."""
    path = own_artifacts / "manifest.json"
    manifest = json.loads(path.read_text())
    for name, day in zip(SPECS, ("2026-12-06", "2026-12-06", "2026-12-07")):
        manifest["models"][name].update(subset=None, trained=f"{day}T08:00:00+00:00", machine="AMD EPYC, 2 CPUs")
    path.write_text(json.dumps(manifest))
    said = texts(run("home").caption)
    assert "measured on one kind of machine (AMD EPYC, 2 CPUs)" in said and "may come" not in said, said
    manifest["models"]["lenet"]["machine"] = "Intel Xeon, 16 CPUs"
    path.write_text(json.dumps(manifest))
    said = texts(run("home").caption)
    assert "come from different machines (AMD EPYC, 2 CPUs; Intel Xeon, 16 CPUs)" in said, said


def test_home_table_and_cards_come_from_the_artifacts(artifacts):
    at = run("home")
    assert_no_exception(at)
    assert not at.error
    table = at.dataframe[0].value
    assert list(table["Model"]) == list(TITLES.values())
    for (name, title), (_, row) in zip(TITLES.items(), table.iterrows()):
        m = metrics_of(artifacts, name)
        assert row["Model"] == title
        assert row["Test accuracy"] == pytest.approx(100 * m["test_accuracy"])
        assert row["Errors"] == m["errors"]
        assert row["Parameters"] == m["params"]
    assert list(table["Write-up"]) == pytest.approx([95.0, 97.66, 98.24])
    assert list(table["Difference"]) == pytest.approx(list(table["Test accuracy"] - table["Write-up"]))
    cards = {m.label: m.value for m in at.metric}
    for name, title in TITLES.items():
        assert cards[title] == f"{100 * metrics_of(artifacts, name)['test_accuracy']:.2f}%"
    links = {link.proto.label for link in at.get("page_link")}
    assert links == {"Dataset", "Training", "Results", "Calibration", "Misclassified", "Draw", "Beyond MNIST",
                     "Your digits", "Train", "Inside"}
    assert "quick run" in texts(at.warning)  # the tiny artifacts are a subset run, and the page says so


def test_every_page_renders_without_exception(artifacts):
    for page in PAGES:
        at = run(page)
        assert_no_exception(at)
        assert not at.error, (page, texts(at.error))
        assert at.title, page


# --- Dataset ---------------------------------------------------------------------------------------
def test_dataset_uses_full_data_when_it_can_find_it(artifacts, mnist):  # mnist: fails if the data is not here
    at = run("dataset")
    assert_no_exception(at)
    assert "full dataset" in texts(at.success)
    assert "60,000 training" in texts(at.success)
    seed = at.session_state["draw_seed"]
    at.button[0].click().run()  # "New random draw"
    assert_no_exception(at)
    assert at.session_state["draw_seed"] != seed
    assert len(at.get("image")) >= 2  # the sample sheet and the class means


def test_dataset_falls_back_to_the_bundled_sample(artifacts, no_dataset):
    at = run("dataset")
    assert_no_exception(at)
    assert not at.error
    with np.load(artifacts / "sample.npz") as f:
        n = len(f["labels"])
    assert f"{n:,} test digits bundled" in texts(at.info)
    assert not at.success


# --- Training --------------------------------------------------------------------------------------
def test_training_shows_histories_and_settings(artifacts):
    at = run("training")
    assert_no_exception(at)
    assert len(at.get("plotly_chart")) >= 3 + 3 * 3  # compared, time, and per model loss / accuracy / lr
    summary = next(d.value for d in at.dataframe if "Per epoch" in d.value.columns)
    for name, title in TITLES.items():
        history = json.loads((artifacts / name / "history.json").read_text())
        row = summary[summary["Model"] == title].iloc[0]
        assert row["Epochs"] == len(history)
        assert row["Total"] == pytest.approx(sum(h["seconds"] for h in history))
    settings = next(d.value for d in at.dataframe if "Setting" in d.value.columns)
    lenet = json.loads((artifacts / "lenet" / "settings.json").read_text())["settings"]
    row = settings[settings["Setting"] == "dropout"].iloc[0]
    assert row[TITLES["lenet"]] == str(lenet["dropout"])
    assert row[TITLES["numpy_mlp"]] == "—"  # the NumPy network has no dropout


def test_epoch_axes_fit_each_chart_s_own_epochs(artifacts):
    """[LeNet's 10-epoch learning-rate chart took its ticks from the 100-epoch NumPy run: epochs 1 and 8 only, and
    the 100-epoch charts ended at a tick for epoch 106.] Every epoch axis spans its own chart's epochs and ticks
    every 1, 2, 5, 10 ... of them, 1 to 15 ticks, none before epoch 1 or after the last."""
    at = run("training")
    assert_no_exception(at)
    runs = [len(json.loads((artifacts / name / "history.json").read_text())) for name in TITLES]
    lr_charts = []
    for chart in at.get("plotly_chart"):
        layout = json.loads(chart.proto.spec)["layout"]
        axis = layout.get("xaxis", {})
        if axis.get("title", {}).get("text") != "Epoch":
            continue
        low, high = axis["range"]
        epochs = round(high - 0.9)
        ticks = [t for t in range(0, epochs + 1, axis["dtick"]) if low <= t <= high]
        assert axis["dtick"] in (1, 2, 5, 10, 20, 50, 100) and 1 <= len(ticks) <= 15, (axis, ticks)
        assert ticks[0] >= 1 and ticks[-1] <= epochs and low < 1, (axis, ticks)
        if "Learning rate" in layout["title"]["text"]:
            lr_charts.append(epochs)
    assert lr_charts == runs  # one per model, in the tabs' order, each over its own run


def test_training_settings_fill_fields_added_since_a_model_was_saved(own_artifacts):
    """A model saved before ``ink_gamma`` existed was trained without it: the table says 0.0, as the loaded model
    has it, not a gap; settings the class cannot read are shown as saved."""
    path = own_artifacts / "numpy_mlp" / "settings.json"
    saved = json.loads(path.read_text())
    del saved["settings"]["train"]["augmentation"]["ink_gamma"]
    path.write_text(json.dumps(saved))
    at = run("training")
    assert_no_exception(at)
    settings = next(d.value for d in at.dataframe if "Setting" in d.value.columns)
    row = settings[settings["Setting"] == "train: augmentation: ink_gamma"].iloc[0]
    assert row[TITLES["numpy_mlp"]] == "0.0"
    assert row[TITLES["lenet"]] == str(json.loads((own_artifacts / "lenet" / "settings.json").read_text())
                                       ["settings"]["train"]["augmentation"]["ink_gamma"])


def test_training_says_where_the_distortions_turned_gentler(own_artifacts):
    """A run whose last epochs saw gentler distortions gets a caption naming those epochs, from its own settings,
    so a step in its training curve is not read as a sudden gain; a run without them is not named."""
    for name, share in (("numpy_mlp", 0.3), ("lenet", 0.0)):
        path = own_artifacts / name / "settings.json"
        saved = json.loads(path.read_text())
        saved["settings"]["train"] |= {"gentle_share": share, "gentle_strength": 0.25}
        path.write_text(json.dumps(saved))
    epochs = json.loads((own_artifacts / "numpy_mlp" / "settings.json").read_text())["settings"]["train"]["epochs"]
    at = run("training")
    assert_no_exception(at)
    caption = next(c.value for c in at.caption if c.value.startswith("Gentler distortions"))
    assert f"{TITLES['numpy_mlp']}, epochs {round(epochs * 0.7) + 1}-{epochs}, every distortion at 0.25 times" in caption
    assert TITLES["lenet"] not in caption


# --- Results ---------------------------------------------------------------------------------------
def test_results_table_agreement_and_vote_match_the_predictions(artifacts):
    at = run("results")
    assert_no_exception(at)
    table = at.dataframe[0].value
    for name, title in TITLES.items():
        row = table[table["Model"] == title].iloc[0]
        assert row["Test accuracy"] == pytest.approx(100 * metrics_of(artifacts, name)["test_accuracy"])
    preds = {n: predictions_of(artifacts, n) for n in TITLES}
    label = preds["lenet"]["label"]
    right = np.stack([preds[n]["pred"] == label for n in TITLES])
    cards = {m.label: m.value for m in at.metric}
    assert cards["All 3 right"] == f"{int(right.all(0).sum()):,}"
    assert cards["All 3 wrong"] == f"{int((~right).all(0).sum()):,}"
    assert cards["At least one wrong"] == f"{int((~right.all(0)).sum()):,}"
    confusions = next(d.value for d in at.dataframe if "Mistake" in d.value.columns)
    top = confusions.iloc[0]
    t, p = (int(s) for s in top["Mistake"].split(" read as "))
    assert top["Total"] == sum(metrics_of(artifacts, n)["confusion"][t][p] for n in TITLES)
    assert len(at.get("plotly_chart")) >= 1 + 3 + 2  # per digit, three confusion matrices, agreement


# --- Misclassified ---------------------------------------------------------------------------------
def misclassified_indices(folder: Path, name: str) -> set[int]:
    with np.load(folder / name / "misclassified.npz") as f:
        return set(f["index"].tolist())


def shown_count(at: AppTest) -> int:
    line = next(m.value for m in at.markdown if "digits that at least one model got wrong" in m.value)
    return int(line.split("**")[1].replace(",", ""))


def cards(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**True ")]


def test_misclassified_counts_and_filters(artifacts):
    wrong = {n: misclassified_indices(artifacts, n) for n in TITLES}
    at = run("misclassified")
    assert_no_exception(at)
    assert shown_count(at) == len(set.union(*wrong.values()))
    assert 0 < len(cards(at)) <= 30
    assert all(all(card.count(f"{s.short} **") == 1 for s in SPECS.values()) for card in cards(at))

    at.pills(key="models").set_value(["lenet"]).run()
    assert shown_count(at) == len(wrong["lenet"])
    assert all(f":red[✗ {SPECS['lenet'].short} **" in card for card in cards(at))

    at.pills(key="models").set_value(["numpy_mlp", "keras_mlp", "lenet"]).run()
    at.toggle(key="all_wrong").set_value(True).run()
    assert shown_count(at) == len(set.intersection(*wrong.values()))
    assert all(card.count(":red[✗") == 3 for card in cards(at))

    at.toggle(key="all_wrong").set_value(False).run()
    at.pills(key="true").set_value([3]).run()
    assert cards(at) and all(card.startswith("**True 3**") for card in cards(at))
    at.pills(key="pred").set_value([5]).run()
    assert_no_exception(at)
    for card in cards(at):  # some model that got it wrong answered 5
        assert any(f":red[✗ {s.short} **5**" in card for s in SPECS.values())


def test_cost_chart_names_the_models_in_its_legend(artifacts):
    """[Names printed beside the points ran over each other (the two MLPs' points nearly touch) and, on a phone,
    off the plot.] One point per model, named in the legend in the pages' order, nothing printed beside it."""
    at = run("results")
    assert_no_exception(at)
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    cost = next(f for f in figs if f["layout"].get("title", {}).get("text", "").startswith("Accuracy against"))
    assert [t["name"] for t in cost["data"]] == list(TITLES.values())
    assert all(t["mode"] == "markers" and t.get("showlegend", True) for t in cost["data"])
    assert cost["layout"]["xaxis"]["title"]["text"] == "Multiply-adds per image (log scale)"


def test_results_link_opens_the_all_wrong_filter(artifacts):
    at = run("results")
    link = next(link for link in at.get("page_link") if "all models get wrong" in link.proto.label)
    assert "all_wrong=1" in link.proto.query_string
    at = AppTest.from_file(HOME, default_timeout=60).run()
    at.query_params["all_wrong"] = "1"
    at.switch_page("views/misclassified.py").run()
    assert_no_exception(at)
    assert at.toggle(key="all_wrong").value is True
    wrong = [misclassified_indices(artifacts, n) for n in TITLES]
    assert shown_count(at) == len(set.intersection(*wrong))


def test_misclassified_sorts_by_confidence(artifacts):
    at = run("misclassified")
    at.pills(key="models").set_value(["lenet"]).run()

    def confidences():
        return [int(c.split(f":red[✗ {SPECS['lenet'].short} **")[1].split("(")[1].split("%")[0].replace(">99", "100"))
                for c in cards(at)]

    high = confidences()
    assert high == sorted(high, reverse=True)
    at.selectbox(key="sort").set_value("Least confident mistakes first").run()
    assert confidences() == sorted(confidences())


# --- Draw ------------------------------------------------------------------------------------------
def prediction_cards(at: AppTest) -> dict[str, str]:
    """The Draw page's answer cards, {model title: digit}."""
    return read_answer_cards(*(h.proto.body for h in at.get("html")))


def test_draw_blank_canvas_asks_for_a_digit(artifacts):
    at = run("draw")
    assert_no_exception(at)
    assert "Draw a digit" in texts(at.info)
    assert not prediction_cards(at)


def test_draw_upload_gives_three_predictions(artifacts):
    with np.load(artifacts / "sample.npz") as f:
        digit = f["images"][0]
    big = np.kron(255 - digit, np.ones((6, 6), np.uint8))  # dark ink on white paper, 168x168
    at = run("draw")
    at.segmented_control(key="source").set_value("Upload an image").run()
    at.file_uploader(key="upload").set_value(("digit.png", png(big), "image/png")).run()
    assert_no_exception(at)
    assert not at.error
    answers = prediction_cards(at)
    assert set(answers) == set(TITLES.values())
    assert all(v in [str(d) for d in range(10)] for v in answers.values())
    banner = texts(at.success) + texts(at.warning)
    assert "agree" in banner
    assert sum(h.proto.body.count('class="pbars"') for h in at.get("html")) == 3  # each model's probability bars


def test_draw_bad_upload_says_why(artifacts):
    at = run("draw")
    at.segmented_control(key="source").set_value("Upload an image").run()
    at.file_uploader(key="upload").set_value(("digit.png", b"this is not a picture", "image/png")).run()
    assert_no_exception(at)
    assert "refused" in texts(at.error) and "not an image" in texts(at.error)
    assert not prediction_cards(at)


def test_draw_blank_upload_asks_for_a_digit(artifacts):
    at = run("draw")
    at.segmented_control(key="source").set_value("Upload an image").run()
    at.file_uploader(key="upload").set_value(("white.png", png(np.full((100, 100), 255, np.uint8)), "image/png")).run()
    assert_no_exception(at)
    assert "blank" in texts(at.info)
    assert not at.error and not prediction_cards(at)


def test_draw_test_set_example(artifacts):
    at = run("draw")
    at.segmented_control(key="source").set_value("Test-set example").run()
    assert_no_exception(at)
    assert set(prediction_cards(at)) == set(TITLES.values())
    assert "The label says" in texts(at.success) + texts(at.warning)


# --- missing, partial and corrupt artifacts ----------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_no_artifacts_folder(page, tmp_path, monkeypatch, no_dataset):
    monkeypatch.setenv("MNIST_ARTIFACTS", str(tmp_path / "nowhere"))
    at = run(page)
    assert_no_exception(at)
    message = texts(at.error)
    assert "nowhere" in message and RETRAIN in message


MISSING = [  # page, file removed, what must still be shown
    ("home", "lenet/metrics.json", lambda at: len(at.dataframe[0].value) == 2),
    ("training", "keras_mlp/history.json", lambda at: at.get("plotly_chart")),
    ("training", "numpy_mlp/settings.json", lambda at: at.get("plotly_chart")),
    ("results", "numpy_mlp/predictions.npz", lambda at: "All 2 right" in {m.label for m in at.metric}),
    ("results", "keras_mlp/metrics.json", lambda at: len(at.dataframe[0].value) == 2),
    ("misclassified", "lenet/misclassified.npz", lambda at: cards(at)),
    ("dataset", "sample.npz", lambda at: [t.value for t in at.title] == ["The dataset"] and not at.get("imgs")),
    ("draw", "lenet/model.keras", lambda at: "Draw a digit" in texts(at.info)),
    ("draw", "numpy_mlp/weights.npz", lambda at: "Draw a digit" in texts(at.info)),
]


@pytest.mark.parametrize("page, missing, still_shown", MISSING, ids=[f"{p}-{m}" for p, m, _ in MISSING])
def test_missing_file_is_named_with_the_command(page, missing, still_shown, own_artifacts, no_dataset):
    (own_artifacts / missing).unlink()
    at = run(page)
    assert_no_exception(at)
    message = texts(at.error)
    assert missing.split("/")[-1] in message and RETRAIN in message, message
    assert still_shown(at)


CORRUPT = [  # page, file, new content
    ("home", "keras_mlp/metrics.json", b"{not json"),
    ("home", "lenet/metrics.json", b'{"test_accuracy": "high"}'),  # parses, wrong shape
    ("training", "lenet/history.json", b"[]"),
    ("results", "lenet/predictions.npz", b"PK\x03\x04 truncated"),
    ("misclassified", "keras_mlp/misclassified.npz", b"garbage"),
    ("dataset", "sample.npz", b""),
    ("draw", "keras_mlp/model.keras", b"PK\x03\x04 not a keras file"),
]


@pytest.mark.parametrize("page, damaged, content", CORRUPT, ids=[f"{p}-{f}" for p, f, _ in CORRUPT])
def test_corrupt_file_is_named_with_the_command(page, damaged, content, own_artifacts, no_dataset):
    (own_artifacts / damaged).write_bytes(content)
    at = run(page)
    assert_no_exception(at)
    message = texts(at.error)
    assert damaged.split("/")[-1] in message and RETRAIN in message, message


def test_no_page_imports_tensorflow(tiny_artifacts):
    """The server reads the Keras models in NumPy (core.models.keras_numpy), so no page, the Draw page and
    the Inside and Train pages included, loads TensorFlow's ~500 MB. AppTest runs in-process, so this runs
    the pages in a fresh interpreter and looks at sys.modules after each; then asks a model for its Keras
    network, which must import it (the check can fail)."""
    script = f"""
import json, sys
sys.path[:0] = [{str(ROOT)!r}]
from streamlit.testing.v1 import AppTest
seen = {{}}
files = {FILES!r}
for page in {[*PAGES, "inside", "train", "beyond", "collection"]!r}:
    at = AppTest.from_file({HOME!r}, default_timeout=120).run()
    if page != "home":
        at.switch_page(f"views/{{files.get(page, page)}}.py").run()
    assert not at.exception, (page, [e.value for e in at.exception])
    seen[page] = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
from core import load_model
load_model("lenet", {str(tiny_artifacts)!r}).net
seen["control"] = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(json.dumps(seen))
"""
    env = {**os.environ, "MNIST_ARTIFACTS": str(tiny_artifacts)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    for page in [*PAGES, "inside", "train", "beyond", "collection"]:
        assert seen[page] == [], f"{page} imported {seen[page]}"
    assert seen["control"] == ["keras", "tensorflow"]
