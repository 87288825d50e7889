"""AppTest for the Inside and Train pages: they render, react, train for one epoch (in a worker process) and share
the result, and the Train page shows and obeys the configured limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

HOME = str(Path(__file__).resolve().parent.parent / "dashboard" / "Home.py")
TIMEOUT = 120


@pytest.fixture
def app_env(monkeypatch, tiny_artifacts):
    monkeypatch.setenv("MNIST_ARTIFACTS", str(tiny_artifacts))


def page(name):
    """The app through its entry point, as a visitor gets it, on views/``name``.

    Home runs first: only then does AppTest know the pages' custom url paths (Train's is "train").
    """
    return AppTest.from_file(HOME, default_timeout=TIMEOUT).run().switch_page(f"views/{name}")


def captions(at) -> str:
    return " ".join(c for image in at.get("image") for c in image.captions)


def no_errors(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_inside_page_every_tab(app_env):
    at = page("inside.py").run()
    no_errors(at)
    assert [t.label for t in at.tabs] == ["Layers", "Saliency", "Weights", "Robustness"]
    assert "says" in " ".join(m.value for m in at.markdown)
    for tab in ["Saliency", "Weights", "Robustness", "Layers"]:
        at.session_state["inside_tab"] = tab
        at.run()
        no_errors(at)
        assert at.get("image")
    # another digit, the other saliency method, a distortion slider and another distortion kind
    at.session_state["inside_tab"] = "Saliency"
    at.pills(key="inside_digit").set_value(7).run()
    at.radio(key="inside_method").set_value("gradient").run()
    no_errors(at)
    assert ": says " in captions(at)  # the saliency pictures, one per model
    at.session_state["inside_tab"] = "Robustness"
    at.run()
    at.slider(key="rb_rotate").set_value(45).run()
    assert at.slider(key="rb_rotate").value == 45
    at.button(key="rb_reset").click().run()
    assert at.slider(key="rb_rotate").value == 0
    at.segmented_control(key="inside_kind").set_value("noise").run()
    no_errors(at)
    assert "What the models see" in captions(at)
    assert ": says " not in captions(at)  # hidden tabs are not computed: no saliency picture now


def test_inside_page_uses_a_drawn_digit(app_env):
    at = page("inside.py")
    drawn = np.zeros((28, 28), np.float32)
    drawn[6:22, 13:15] = 1  # a "1"
    at.session_state["drawn_digit"] = drawn
    at.run()
    no_errors(at)
    assert "your drawing" in captions(at)  # a fresh drawing is shown first
    at.segmented_control(key="inside_source").set_value("A test digit").run()
    assert "test digit #" in captions(at)


def test_train_page_trains_one_epoch_and_shares_the_model(app_env):
    from dashboard import session

    at = page("train_a_model.py").run()
    no_errors(at)
    at.selectbox(key="train_model").set_value("keras_mlp")
    at.select_slider(key="train_subset").set_value(500)
    at.slider(key="train_epochs").set_value(1)
    at.run()
    at.button(key="train").click().run()
    no_errors(at)
    jobs = at.session_state[session.JOBS_KEY]
    assert len(jobs) == 1
    assert jobs[0].wait(TIMEOUT).done
    at.run()
    no_errors(at)
    models = at.session_state[session.KEY]
    (trained,) = models.values()
    job = trained.job
    assert job.model_name == "keras_mlp" and trained.label.startswith("Your")
    assert job.metrics["epochs"] == 1 and job.metrics["train_size"] == 500
    assert job.predictions["probs"].shape == (10_000, 10)
    assert job.model.settings.train.epochs == 1  # what it was trained with, in its own settings
    assert any("Your models in this session" in s.value for s in at.subheader)
    assert not at.session_state[session.JOBS_KEY]

    # ... and the Inside page shows it beside the committed three
    inside = page("inside.py")
    inside.session_state[session.KEY] = models
    inside.session_state[session.COUNT_KEY] = 1
    inside.run()
    no_errors(inside)
    text = " ".join(m.value for m in inside.markdown)
    assert trained.label in text and "this session" in text


def test_train_page_stop_button_keeps_the_model(app_env):
    import time

    from dashboard import session

    at = page("train_a_model.py").run()
    at.selectbox(key="train_model").set_value("lenet")
    at.select_slider(key="train_subset").set_value(2000)
    at.slider(key="train_epochs").set_value(10)
    at.run()
    at.button(key="train").click().run()
    (job,) = at.session_state[session.JOBS_KEY]
    deadline = time.monotonic() + TIMEOUT
    while not job.history and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()  # the progress fragment now shows a live Stop button
    assert not at.button(key="stop").disabled
    at.button(key="stop").click().run()
    assert job.wait(TIMEOUT).done
    at.run()
    no_errors(at)
    (trained,) = at.session_state[session.KEY].values()
    assert trained.stopped_early and 1 <= trained.job.metrics["epochs"] < 10
    assert "(stopped early)" in " ".join(c.value for c in at.caption)


def test_train_page_offers_only_what_the_server_accepts(app_env):
    """The sliders stop at the server's limits (they once offered 55,000 images and 30 epochs, always
    refused): their extremes together are a request the server takes, and the page says the limits."""
    from core import jobs

    at = page("train_a_model.py").run()
    subset, epochs = at.select_slider(key="train_subset"), at.slider(key="train_epochs")
    sizes = [int(o.replace(",", "")) for o in subset.options]
    assert min(sizes) >= jobs.MIN_SUBSET and max(sizes) == jobs.MAX_SUBSET
    assert (epochs.min, epochs.max) == (1, jobs.MAX_EPOCHS)
    subset.set_value(max(sizes))
    epochs.set_value(jobs.MAX_EPOCHS).run()
    assert not at.warning and not at.button(key="train").disabled
    assert f"{jobs.MAX_SUBSET:,} images" in " ".join(c.value for c in at.caption)


@pytest.fixture
def limits_restored():
    """The limits are process-wide (core.jobs.configure): back to the defaults after the test."""
    from core import jobs

    yield jobs
    jobs.configure(environ={})


def test_train_page_shows_and_obeys_the_configured_limits(app_env, monkeypatch, limits_restored):
    jobs = limits_restored
    monkeypatch.setenv("MNIST_MAX_TRAINING_IMAGES", "3000")
    monkeypatch.setenv("MNIST_MAX_TRAINING_JOBS", "2")
    at = page("train_a_model.py")
    at.secrets["MNIST_MAX_EPOCHS"] = 4  # Streamlit secrets, as on Community Cloud
    at.secrets["MNIST_MAX_TRAINING_JOBS"] = 3  # the environment wins
    at.run()
    no_errors(at)
    assert not at.warning
    sizes = [int(o.replace(",", "")) for o in at.select_slider(key="train_subset").options]
    assert max(sizes) == 3000 and at.slider(key="train_epochs").max == 4
    text = " ".join(c.value for c in at.caption)
    assert "3,000 images and 4 epochs per training, 2 models training at a time" in text
    assert "its own low-priority process" in text
    assert jobs.MAX_JOBS == 2


def test_train_page_says_when_a_limit_is_misconfigured(app_env, monkeypatch, limits_restored):
    jobs = limits_restored
    monkeypatch.setenv("MNIST_MAX_EPOCHS", "lots")
    at = page("train_a_model.py").run()
    assert not at.exception and not at.error
    (warning,) = at.warning
    assert "MNIST_MAX_EPOCHS='lots' is not a whole number from 1 to 50" in warning.value
    assert "using the default, 10" in warning.value
    assert at.slider(key="train_epochs").max == jobs.MAX_EPOCHS == 10
    assert not at.button(key="train").disabled  # training still works, under the defaults


def test_train_page_without_the_dataset(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    at = page("train_a_model.py").run()
    assert not at.exception
    assert any("MNIST_DIR" in i.value for i in at.info)
    assert not at.button  # nothing to press


def test_streamlit_reruns_leave_keras_state_alone():
    """A rerun in one session must not wipe Keras's state under a model training in another thread."""
    import keras
    from keras.src.backend.common import global_state
    from streamlit.runtime.scriptrunner import script_runner

    from dashboard import keras_guard

    assert keras_guard.install()
    global_state.set_global_attribute("mnist_marker", 1)
    script_runner._clean_problem_modules()  # what Streamlit runs after every script run
    assert global_state.get_global_attribute("mnist_marker") == 1
    keras.backend.clear_session()  # Keras itself is untouched: its own call still clears
    assert global_state.get_global_attribute("mnist_marker") is None


def test_keras_guard_says_so_when_streamlit_has_moved_its_clean_up(monkeypatch, caplog):
    from streamlit.runtime.scriptrunner import script_runner

    from dashboard import keras_guard

    monkeypatch.delattr(script_runner, "_clean_problem_modules")
    with caplog.at_level("WARNING", logger="dashboard.keras_guard"):
        assert keras_guard.install() is False
    assert "may clear Keras's state" in caplog.text
