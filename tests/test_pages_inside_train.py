"""AppTest for the Inside and Train pages: they render, react, train for one epoch and share the result."""

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
    at.session_state["inside_tab"] = "Robustness"
    at.run()
    at.slider(key="rb_rotate").set_value(45).run()
    assert at.slider(key="rb_rotate").value == 45
    at.button(key="rb_reset").click().run()
    assert at.slider(key="rb_rotate").value == 0
    at.segmented_control(key="inside_kind").set_value("noise").run()
    no_errors(at)
    assert "What the models see" in captions(at)
    assert "saliency" not in captions(at).lower()  # hidden tabs are not computed


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
    import session_models

    at = page("train_live.py").run()
    no_errors(at)
    at.selectbox(key="train_model").set_value("keras_mlp")
    at.select_slider(key="train_subset").set_value(500)
    at.slider(key="train_epochs").set_value(1)
    at.run()
    at.button(key="train").click().run()
    no_errors(at)
    jobs = at.session_state[session_models.JOBS_KEY]
    assert len(jobs) == 1
    assert jobs[0].wait(TIMEOUT).done
    at.run()
    no_errors(at)
    models = at.session_state[session_models.KEY]
    (entry,) = models.values()
    assert entry.name == "keras_mlp" and entry.label.startswith("Your")
    assert entry.metrics["epochs"] == 1 and entry.settings["train_size"] == 500
    assert entry.predictions["probs"].shape == (10_000, 10)
    assert any("Your models in this session" in s.value for s in at.subheader)
    assert not at.session_state[session_models.JOBS_KEY]

    # ... and the Inside page shows it beside the committed three
    inside = page("inside.py")
    inside.session_state[session_models.KEY] = models
    inside.run()
    no_errors(inside)
    text = " ".join(m.value for m in inside.markdown)
    assert entry.label in text and "this session" in text


def test_train_page_stop_button_keeps_the_model(app_env):
    import time

    import session_models

    at = page("train_live.py").run()
    at.selectbox(key="train_model").set_value("lenet")
    at.select_slider(key="train_subset").set_value(2000)
    at.slider(key="train_epochs").set_value(10)
    at.run()
    at.button(key="train").click().run()
    (job,) = at.session_state[session_models.JOBS_KEY]
    deadline = time.monotonic() + TIMEOUT
    while not job.history and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()  # the progress fragment now shows a live Stop button
    assert not at.button(key="stop").disabled
    at.button(key="stop").click().run()
    assert job.wait(TIMEOUT).done
    at.run()
    no_errors(at)
    (entry,) = at.session_state[session_models.KEY].values()
    assert entry.settings["stopped_early"] and 1 <= entry.settings["epochs"] < 10
    assert "(stopped early)" in " ".join(c.value for c in at.caption)


def test_train_page_says_when_a_request_is_over_the_limits(app_env):
    at = page("train_live.py").run()
    at.select_slider(key="train_subset").set_value(55_000).run()
    assert any("limit" in w.value for w in at.warning)
    assert at.button(key="train").disabled
    at.select_slider(key="train_subset").set_value(2000)
    at.slider(key="train_epochs").set_value(25).run()
    assert any("epochs is outside" in w.value for w in at.warning)


def test_train_page_without_the_dataset(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    at = page("train_live.py").run()
    assert not at.exception
    assert any("MNIST_DIR" in i.value for i in at.info)
    assert not at.button  # nothing to press


def test_streamlit_reruns_leave_keras_state_alone():
    """A rerun in one session must not wipe Keras's state under a model training in another thread."""
    import keras
    from keras.src.backend.common import global_state
    from streamlit.runtime.scriptrunner import script_runner

    import session_models

    assert session_models.keep_keras_state()
    global_state.set_global_attribute("mnist_marker", 1)
    script_runner._clean_problem_modules()  # what Streamlit runs after every script run
    assert global_state.get_global_attribute("mnist_marker") == 1
    assert keras.backend.clear_session is not None  # Keras itself is untouched
