"""core.jobs: training in a worker process, with progress, stop, limits (and their configuration), two jobs at
once, and no worker left behind: abandoned, crashed or outlived by its server."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from core import jobs as live
from core import worker

pytestmark = pytest.mark.usefixtures("no_job_left")

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


@pytest.fixture
def two_slots():
    """A server configured for two trainings at once (the default, for a 1 GB machine, is one)."""
    live.configure(environ={"MNIST_MAX_TRAINING_JOBS": "2"})
    yield
    live.configure(environ={})


def test_two_jobs_at_once_both_finish_and_a_third_waits(mnist, two_slots):
    """Two Keras trainings in two workers at the same time (as two browser sessions would)."""
    a = live.TrainingJob.start("lenet", {"epochs": 1}, subset=500, data=mnist)
    b = live.TrainingJob.start("keras_mlp", {"epochs": 1}, subset=500, data=mnist)
    assert live.MAX_JOBS == 2 and a.pid != b.pid
    with pytest.raises(live.LimitError, match="already training"):
        live.TrainingJob.start("numpy_mlp", {"epochs": 1}, subset=500, data=mnist)
    for job in (a, b):
        info = finished(job)
        assert info["state"] == "done", info
        assert len(info["history"]) == 1
        assert job.model.predict_proba(np.zeros((1, 28, 28), np.float32)).shape == (1, 10)
    assert a.model.network is not b.model.network
    assert live.slots_free() == live.MAX_JOBS  # both slots are given back


# --- the worker process ----------------------------------------------------------------------------------
def process_gone(pid: int, within: float = 20) -> bool:
    """Whether ``pid`` has ended and been reaped (a zombie is not gone) within ``within`` seconds (0: now)."""
    deadline = time.monotonic() + within
    while True:
        if not Path(f"/proc/{pid}").exists():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def running(job):
    """Wait until the job has finished its first epoch and still runs; returns its progress."""
    deadline = time.monotonic() + TIMEOUT
    while not job.history and not job.done and time.monotonic() < deadline:
        time.sleep(0.02)
    info = job.progress()
    assert not job.done and info["state"] == "running", info
    return info


def test_a_job_trains_in_a_niced_one_threaded_child_process(mnist):
    import os

    job = live.TrainingJob.start("keras_mlp", {"epochs": 10}, subset=2000, data=mnist)
    try:
        assert job.pid is not None and job.pid != os.getpid()
        env = [b""]
        for _ in range(100):  # empty while the child is still inside exec (a CI run once read it then)
            env = Path(f"/proc/{job.pid}/environ").read_bytes().split(b"\0")
            if env != [b""]:
                break
            time.sleep(0.05)
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                     "MNIST_TRAIN_THREADS"):
            assert f"{name}=1".encode() in env
        assert Path(f"/proc/{job.pid}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-m", b"core.worker"]
        folder = job.folder
        assert folder.is_dir()
        info = running(job)  # progress arrives while it trains
        # lower priority than this process (the server), up to the lowest there is (pytest may run under nice)
        assert niceness(job.pid) == min(19, niceness(os.getpid()) + worker.NICE)
        # and Linux's idle class, for the worker and every thread it started: a core only when no one else wants it
        threads = list(Path(f"/proc/{job.pid}/task").iterdir())
        assert len(threads) > 1 and {os.sched_getscheduler(int(t.name)) for t in threads} == {os.SCHED_IDLE}
        assert info["epoch"] >= 1 and 0 < info["fraction"] < 1 and job.train_size == 2000
    finally:
        job.stop()
    info = finished(job)
    assert info["state"] == "stopped" and job.model is not None  # loaded back into this process
    assert process_gone(job.pid, 0) and not folder.exists()


def test_an_abandoned_jobs_process_is_gone_and_its_folder_removed(mnist):
    there = {"yes": True}
    job = live.TrainingJob.start("lenet", {"epochs": 10}, subset=5000, data=mnist, owner="gone-tab",
                                 alive=lambda: there["yes"], grace=0.5)
    running(job)
    pid, folder = job.pid, job.folder
    there["yes"] = False
    info = finished(job)
    assert info["state"] == "stopped" and job.abandoned and "has gone" in info["message"]
    assert job.model is None and job.metrics is None
    assert process_gone(pid, 0), "the worker is still there (or a zombie)"
    assert not folder.exists()
    assert live.training("gone-tab") == 0 and live.slots_free() == live.MAX_JOBS


def test_a_killed_worker_gives_a_clear_error_not_a_hang(mnist):
    import os
    import signal

    job = live.TrainingJob.start("keras_mlp", {"epochs": 10}, subset=2000, data=mnist, owner="crash")
    running(job)
    os.kill(job.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    info = finished(job)
    assert info["state"] == "error" and job.model is None
    assert "training process was killed by SIGKILL" in info["error"] and "nothing was kept" in info["error"]
    assert not job.folder.exists() and live.training("crash") == 0


def test_a_worker_error_is_reported_with_its_reason(mnist):
    """A worker that fails says why (here: no data), and the job ends with that message."""
    job = live.TrainingJob.start("numpy_mlp", {"epochs": 1}, subset=500, data_dir="/nonexistent/mnist")
    info = finished(job)
    assert info["state"] == "error" and info["error"].startswith("DataError: No MNIST data found")
    assert "MNIST_DIR" in info["error"] and job.model is None


SERVER = """
import sys, time
from core import jobs
from core.data import load_mnist
job = jobs.TrainingJob.start("lenet", {"epochs": 10}, subset=jobs.MAX_SUBSET, data=load_mnist())
while not job.history and not job.done:
    time.sleep(0.05)
print(job.pid, job.folder, job.progress()["state"], flush=True)
if sys.argv[1] == "exit":
    sys.exit(0)
time.sleep(600)
"""


@pytest.mark.parametrize("how", ["exit", "SIGKILL", "SIGTERM"])
def test_no_worker_outlives_its_server(how, tmp_path):
    """The server exits (atexit kills its workers) or is killed (its workers see their pipe close and leave):
    no orphan keeps training, no temporary folder is left."""
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen([sys.executable, "-c", SERVER, how], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        pid, folder, state = server.stdout.readline().split()
        assert state == "running" and process_gone(int(pid), 0) is False
        if how != "exit":
            server.send_signal(getattr(signal, how))
        server.wait(TIMEOUT)
        assert process_gone(int(pid)), f"the worker {pid} outlived its server"
        assert not Path(folder).exists()
    finally:
        server.kill()
        server.wait()


# --- limits from the configuration -------------------------------------------------------------------------
@pytest.fixture
def defaults_after():
    yield
    live.configure(environ={})
    assert (live.MAX_JOBS, live.MAX_SUBSET, live.MAX_EPOCHS) == (1, 5000, 10)  # fit a 1 GB machine


def test_limits_come_from_the_environment_then_the_settings(defaults_after):
    assert live.configure({"MNIST_MAX_EPOCHS": 4, "MNIST_MAX_TRAINING_IMAGES": "3000"},
                          environ={"MNIST_MAX_TRAINING_JOBS": "2", "MNIST_MAX_EPOCHS": "6"}) == []
    assert (live.MAX_JOBS, live.MAX_SUBSET, live.MAX_EPOCHS) == (2, 3000, 6)  # the environment first
    assert live.limits()["max_images"] == 3000 and live.slots_free() == 2
    with pytest.raises(live.LimitError, match="limit of 1 to 6"):
        live.check_request("lenet", {"epochs": 7}, 1000)
    with pytest.raises(live.LimitError, match="3,000 images"):
        live.check_request("lenet", {"epochs": 1}, 3001)


@pytest.mark.parametrize("value", ["lots", "0", "-3", "2.5", "", "1e9", True])
def test_a_bad_limit_is_refused_clearly_and_the_default_kept(value, defaults_after):
    problems = live.configure({"MNIST_MAX_EPOCHS": value}, environ={"MNIST_MAX_TRAINING_JOBS": "3"})
    (problem,) = problems
    assert problem.startswith("setting MNIST_MAX_EPOCHS=") and "whole number from 1 to 50" in problem
    assert "using the default, 10" in problem
    assert live.MAX_EPOCHS == 10 and live.MAX_JOBS == 3 and problems == live.PROBLEMS


def test_limits_are_read_from_the_environment_at_import(tmp_path):
    import os
    import subprocess
    import sys

    code = "from core import jobs; print(jobs.MAX_JOBS, jobs.MAX_SUBSET, jobs.MAX_EPOCHS, len(jobs.PROBLEMS))"
    env = os.environ | {"MNIST_MAX_TRAINING_JOBS": "3", "MNIST_MAX_TRAINING_IMAGES": "12,000", "MNIST_MAX_EPOCHS": "x"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=TIMEOUT,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.split() == ["3", "12000", "10", "1"], out.stderr
    assert "MNIST_MAX_EPOCHS='x' is not a whole number" in out.stderr  # logged for the operator
