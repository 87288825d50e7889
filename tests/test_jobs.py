"""core.jobs: training in a background thread, with progress, stop, limits and two jobs at once."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core import jobs as live

TIMEOUT = 180  # seconds; generous for a loaded 2-core machine, never reached when things work


def finished(job):
    assert job.wait(TIMEOUT).done, "training did not finish in time"
    return job.progress()


def test_one_epoch_on_a_small_subset(mnist):
    job = live.TrainingJob.start("numpy_mlp", {"epochs": 1, "lr": 0.05}, subset=500, data=mnist)
    info = finished(job)
    assert info["state"] == "done", info
    assert info["fraction"] == 1.0 and info["epoch"] == 1
    (record,) = info["history"]
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= set(record)
    assert job.train_size == 500
    assert job.metrics["test_size"] == 10_000 and job.metrics["epochs"] == 1
    assert 0.15 < job.metrics["test_accuracy"] <= 1  # better than chance after 4 steps on 500 digits
    assert job.predictions["probs"].shape == (10_000, 10)
    assert job.model.predict_proba(np.zeros((2, 28, 28), np.float32)).shape == (2, 10)
    assert job.model.settings.train.epochs == 1 and job.model.settings.train.lr == 0.05


def test_stop_keeps_a_usable_model(mnist):
    job = live.TrainingJob.start("keras_mlp", {"epochs": 10}, subset=1000, data=mnist)
    deadline = time.monotonic() + TIMEOUT
    while not job.history and not job.done and time.monotonic() < deadline:
        time.sleep(0.01)
    job.stop()
    info = finished(job)
    assert info["state"] == "stopped", info
    assert 1 <= info["epoch"] < 10
    assert len(job.model.history) == info["epoch"]
    assert job.metrics["test_accuracy"] > 0.3  # it keeps what it learnt
    assert "Stopped" in info["message"]


def test_progress_snapshots_are_copies(mnist):
    job = live.TrainingJob.start("numpy_mlp", {"epochs": 2}, subset=500, data=mnist)
    first = job.progress()
    first["history"].append({"bogus": 1})
    info = finished(job)
    assert len(info["history"]) == 2 and all("bogus" not in r for r in info["history"])


@pytest.mark.parametrize("overrides, subset, words", [
    ({"epochs": live.MAX_EPOCHS + 1}, 500, f"limit of 1 to {live.MAX_EPOCHS}"),
    ({"epochs": 1}, live.MAX_SUBSET + 1, f"{live.MAX_SUBSET:,} images"),
    ({"epochs": 1}, 10, "limit"),
    ({"epochs": 1, "batch_size": 100_000}, 500, "batch size"),
    ({"epochs": 1, "lr": 5.0}, 500, "learning rate"),
    ({"epochs": 1, "hidden": 4096}, 500, "cannot set hidden"),
])
def test_requests_over_the_limits_are_refused_clearly(overrides, subset, words):
    before = live.slots_free()
    with pytest.raises(live.LimitError, match=words):
        live.TrainingJob.start("lenet", overrides, subset=subset, data=object())
    assert live.slots_free() == before  # a refused request takes no slot


@pytest.mark.parametrize("name", ["numpy_mlp", "keras_mlp", "lenet"])
def test_limits_are_checked_on_the_settings_the_job_will_use(name):
    """Nothing given: the model's own batch size and learning rate, the live default epochs."""
    from core import model_class

    own = model_class(name).Settings().train
    t = live.resolve(name, {}).train
    assert (t.batch_size, t.lr, t.augment) == (own.batch_size, own.lr, own.augment)
    assert t.epochs == live.DEFAULT_EPOCHS
    live.check_request(name, {}, 5000)  # the defaults are always within the limits
    with pytest.raises(live.LimitError, match="learning rate"):
        live.check_request(name, {"lr": 2.0}, 5000)


def test_unknown_model():
    with pytest.raises(KeyError, match="unknown model"):
        live.TrainingJob.start("resnet", {"epochs": 1}, subset=500, data=object())


def test_no_dataset_gives_an_error_that_says_how_to_get_it(tmp_path):
    job = live.TrainingJob.start("numpy_mlp", {"epochs": 1}, subset=500, data_dir=tmp_path / "nowhere")
    info = finished(job)
    assert info["state"] == "error" and job.model is None
    assert "MNIST_DIR" in info["error"]


def test_two_jobs_at_once_both_finish_and_a_third_waits(mnist):
    """Two Keras trainings in two threads at the same time (as two browser sessions would)."""
    a = live.TrainingJob.start("lenet", {"epochs": 1}, subset=500, data=mnist)
    b = live.TrainingJob.start("keras_mlp", {"epochs": 1}, subset=500, data=mnist)
    assert live.MAX_JOBS == 2
    with pytest.raises(live.LimitError, match="already training"):
        live.TrainingJob.start("numpy_mlp", {"epochs": 1}, subset=500, data=mnist)
    for job in (a, b):
        info = finished(job)
        assert info["state"] == "done", info
        assert len(info["history"]) == 1
        assert job.model.predict_proba(np.zeros((1, 28, 28), np.float32)).shape == (1, 10)
    assert a.model.net is not b.model.net
    assert live.slots_free() == live.MAX_JOBS  # both slots are given back
