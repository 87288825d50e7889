"""Training jobs: a model training in a background thread that anyone can watch and stop; the
engine of the dashboard's Train page.

    job = TrainingJob.start("lenet", {"epochs": 3, "lr": 2e-3}, subset=5000, data=load_mnist())
    job.progress()        # {"state": "running", "epoch": 1, "fraction": 0.4, "history": [...], ...}
    job.stop()            # finishes the current batch, keeps what was learnt
    job.wait()            # -> the finished job; job.model, job.metrics, job.predictions, job.misclassified

Training goes through the models' own ``fit`` (the loop ``python -m core.train`` uses),
with ``on_epoch``/``on_batch`` callbacks that record progress and ask to stop. Nothing
here saves anything: a job's model lives only as long as whoever holds the job.
Limits keep a small shared machine alive: ``MAX_SUBSET`` training images,
``MAX_EPOCHS`` epochs, ``MAX_JOBS`` jobs training at once in this process and
``MAX_JOBS_PER_OWNER`` per owner (whoever starts it: the dashboard passes one id per
browser); a request over them raises ``LimitError`` saying what is allowed. They are
checked on the settings the job will really use: the model's own defaults with the
request's changes applied. A job can be told how to see that its owner has gone
(``alive``): it then stops ``ORPHAN_GRACE`` seconds after, freeing its slot.

    job = TrainingJob.start("lenet", subset=5000, owner="browser-1", alive=lambda: tab_is_open())
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from core.data import DataError, find_mnist, how_to_point, splits
from core.evaluate import evaluate
from core.models import SPECS, model_class
from core.settings import TrainSettings, with_training

MAX_SUBSET = 20_000  # training images per job
MIN_SUBSET = 100
MAX_EPOCHS = 10
MAX_JOBS = 2  # jobs training at the same time in one server process
MAX_JOBS_PER_OWNER = 1  # of those, one per owner: one visitor with two tabs cannot take both
ORPHAN_GRACE = 10.0  # seconds a job trains on once its owner is gone; coming back within them keeps it
ALIVE_EVERY = 1.0  # seconds between two looks at whether the owner is still there
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
TUNABLE = ("epochs", "batch_size", "lr", "augment", "seed")

DEFAULT_EPOCHS = 3  # a live run's epochs unless the visitor chooses: a minute, not the full schedule


class LimitError(ValueError):
    """A training request is over this server's limits; the message says which and what is allowed."""


class _Slots:
    """How many jobs train at once in this process, in all and per owner: counters under a lock."""

    def __init__(self, size: int, per_owner: int):
        self.size, self.per_owner, self.busy, self._lock = size, per_owner, 0, threading.Lock()
        self.owners: dict[str, int] = {}

    def take(self, owner: str | None = None) -> None:
        """Take a slot for ``owner`` (None: no owner limit); raises LimitError saying which limit is reached."""
        with self._lock:
            if owner is not None and self.owners.get(owner, 0) >= self.per_owner:
                raise LimitError(
                    f"You are already training {'a model' if self.per_owner == 1 else f'{self.per_owner} models'} "
                    "(in this tab, another one, or one just closed or reloaded, which stops within "
                    f"{ORPHAN_GRACE:.0f} s), the most one visitor may train at once on this shared server. "
                    "Stop it or wait until it has finished."
                )
            if self.busy >= self.size:
                raise LimitError(
                    f"{self.size} models are already training on this server, the most it runs at once. "
                    "Try again in a minute, when one has finished."
                )
            self.busy += 1
            if owner is not None:
                self.owners[owner] = self.owners.get(owner, 0) + 1

    def give_back(self, owner: str | None = None) -> None:
        with self._lock:
            self.busy -= 1
            if owner is not None:
                self.owners[owner] -= 1
                if not self.owners[owner]:
                    del self.owners[owner]

    def free(self) -> int:
        with self._lock:
            return self.size - self.busy


_slots = _Slots(MAX_JOBS, MAX_JOBS_PER_OWNER)


def resolve(model_name: str, overrides: dict):
    """The settings a job would train with: the model's defaults, ``DEFAULT_EPOCHS``, then ``overrides``.

    Raises KeyError for an unknown model and LimitError for a setting that cannot be changed here.
    """
    cls = model_class(model_name)
    unknown = set(overrides) - set(TUNABLE)
    if unknown:
        raise LimitError(f"cannot set {', '.join(sorted(unknown))} here; adjustable: {', '.join(TUNABLE)}.")
    return with_training(cls.Settings(), **({"epochs": DEFAULT_EPOCHS} | overrides))


def check_request(model_name: str, overrides: dict, subset: int) -> None:
    """Raise LimitError (or KeyError for an unknown model) if a request cannot be run here."""
    check_limits(resolve(model_name, overrides).train, subset)


def check_limits(t: TrainSettings, subset: int) -> None:
    """Raise LimitError if resolved training settings on ``subset`` images are over this server's limits."""
    if not MIN_SUBSET <= subset <= MAX_SUBSET:
        raise LimitError(
            f"Training-set size {subset:,} is outside this server's limit of {MIN_SUBSET:,} to {MAX_SUBSET:,} images. "
            f"For the full 55,000, train on your own machine: python -m core.train"
        )
    epochs = t.epochs
    if not 1 <= epochs <= MAX_EPOCHS:
        raise LimitError(
            f"{epochs} epochs is outside this server's limit of 1 to {MAX_EPOCHS}. "
            f"For longer runs, train on your own machine: python -m core.train --epochs N"
        )
    bs = t.batch_size
    if bs not in BATCH_SIZES:
        raise LimitError(f"batch size {bs} is not offered here; choose from {', '.join(map(str, BATCH_SIZES))}.")
    lr = t.lr
    if not 0 < lr <= 1:
        raise LimitError(f"learning rate {lr} is outside (0, 1].")


class TrainingJob:
    """One model training in its own thread; every method is safe to call from any thread."""

    def __init__(self, model_name: str, overrides: dict | None = None, subset: int = 5000, data=None, data_dir=None,
                 owner: str | None = None, alive: Callable[[], bool] | None = None, grace: float = ORPHAN_GRACE):
        self.settings = resolve(model_name, dict(overrides or {}))
        check_limits(self.settings.train, subset)
        self.model_name, self.title, self.subset = model_name, SPECS[model_name].title, int(subset)
        cls = model_class(model_name)
        # Built here, in the caller's thread, not in the training thread: Keras names layers from
        # global state that a Streamlit rerun may reset at any moment (see dashboard/keras_guard.py),
        # and a construction error is better raised to the caller than reported later.
        self._model = cls(self.settings)
        self._data, self._data_dir = data, data_dir
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._state = "starting"
        self._message = "Loading data…"
        self._epoch_fraction = 0.0
        self._history: list[dict] = []
        self._error: str | None = None
        self._started = self._finished = None
        self.model = self.metrics = self.predictions = self.misclassified = None
        self.train_size = None
        self.owner, self._alive, self._grace = owner, alive, grace
        self._last_look = -math.inf
        self._gone_since: float | None = None
        self.abandoned = False  # stopped because its owner went away
        self._thread = threading.Thread(target=self._run, name=f"train-{model_name}", daemon=True)

    @classmethod
    def start(cls, model_name: str, overrides: dict | None = None, subset: int = 5000, data=None, data_dir=None,
              owner: str | None = None, alive: Callable[[], bool] | None = None,
              grace: float = ORPHAN_GRACE) -> TrainingJob:
        """Check the request, take one of the ``MAX_JOBS`` training slots (and of the owner's
        ``MAX_JOBS_PER_OWNER``) and start; raises LimitError.

        ``alive``, if given, is asked now and then (from the training thread) whether the owner is still
        there; once it has answered False for ``grace`` seconds, the job stops as if Stop had been pressed,
        skipping the evaluation nobody would see. An exception from it counts as "still there".
        """
        job = cls(model_name, overrides, subset, data, data_dir, owner, alive, grace)
        _slots.take(owner)
        job._started = time.time()
        job._thread.start()
        return job

    # --- read from the page ------------------------------------------------------------------
    @property
    def epochs(self) -> int:
        return self.settings.train.epochs

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def history(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._history]

    def progress(self) -> dict:
        """A snapshot: state ("starting", "running", "stopping", "evaluating", "done", "stopped",
        "error"), epoch (completed), epochs, fraction (of the whole run, 0-1), history, message, error."""
        with self._lock:
            done_epochs = len(self._history)
            fraction = 1.0 if self._state in ("done", "stopped") else min(
                1.0, (done_epochs + self._epoch_fraction) / max(self.epochs, 1))
            return {
                "state": self._state,
                "epoch": done_epochs,
                "epochs": self.epochs,
                "fraction": fraction,
                "history": [dict(r) for r in self._history],
                "message": self._message,
                "error": self._error,
                "seconds": (self._finished or time.time()) - (self._started or time.time()),
            }

    def stop(self) -> None:
        """Ask training to stop after the current batch; the model keeps what it has learnt."""
        self._stop.set()
        with self._lock:
            if self._state in ("starting", "running"):
                self._state, self._message = "stopping", "Stopping after the current batch…"

    def wait(self, timeout: float | None = None) -> TrainingJob:
        self._done.wait(timeout)
        return self

    # --- the thread ----------------------------------------------------------------------------
    def _set(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self, "_" + k, v)

    def _watched(self) -> None:
        """Stop the job once its owner has been gone for ``grace`` seconds (looks at most every ``ALIVE_EVERY``)."""
        now = time.monotonic()
        if self._alive is None or now - self._last_look < ALIVE_EVERY:
            return
        self._last_look = now
        try:
            there = bool(self._alive())
        except Exception:  # a broken check must never stop someone's training
            logging.getLogger(__name__).warning("the alive check of %s failed", self.model_name, exc_info=True)
            there = True
        if there:
            self._gone_since = None
            return
        if self._gone_since is None:
            self._gone_since = now
        if now - self._gone_since >= self._grace and not self._stop.is_set():
            self.abandoned = True
            self.stop()

    def _on_batch(self, fraction: float):
        self._set(epoch_fraction=float(fraction))
        self._watched()
        return not self._stop.is_set()

    def _on_epoch(self, record: dict):
        with self._lock:
            self._history.append(dict(record))
            self._epoch_fraction = 0.0
            if self._state == "running":
                self._message = f"Epoch {record['epoch']} of {self.epochs} done."
        self._watched()
        return not self._stop.is_set()

    def _run(self) -> None:
        try:
            data = self._data if self._data is not None else find_mnist(self._data_dir)
            if data is None:
                raise DataError(f"No MNIST data found. {how_to_point()}")
            train, val, test = splits(data, subset=self.subset, seed=self.settings.train.seed)
            self.train_size = len(train)
            if self._stop.is_set():
                self._set(state="stopped", message="Stopped before training began.")
                return
            self._set(state="running", message=f"Training on {len(train):,} images…")
            model = self._model
            model.fit(train, val, on_epoch=self._on_epoch, on_batch=self._on_batch)
            stopped = self._stop.is_set()
            if self.abandoned:  # nobody is there to see the result: free the slot now
                self._set(state="stopped", message=f"Stopped after {len(model.history)} epoch(s): whoever started it "
                                                   "has gone.")
                return
            self._set(state="evaluating", message="Calibrating, then testing on the 10,000 test digits…")
            calibration = model.calibrate(val)
            result = evaluate(model, test, calibration, train_seconds=time.time() - self._started, epochs=len(model.history),
                              train_size=len(train))
            metrics = result.metrics
            self.model, self.metrics = model, metrics
            self.predictions, self.misclassified = result.predictions, result.misclassified
            self._set(
                state="stopped" if stopped else "done",
                message=(f"{'Stopped' if stopped else 'Finished'} after {len(model.history)} epoch(s): "
                         f"test accuracy {metrics['test_accuracy']:.2%}."),
            )
        except Exception as e:  # shown on the page; the thread must never die silently
            logging.getLogger(__name__).exception("training %s failed", self.model_name)
            self._set(state="error", error=f"{type(e).__name__}: {e}", message="Training failed.")
        finally:
            self._set(finished=time.time())
            _slots.give_back(self.owner)
            self._done.set()


def slots_free() -> int:
    """How many more jobs could start now in this process (0 to MAX_JOBS)."""
    return _slots.free()


def training(owner: str) -> int:
    """How many jobs ``owner`` has training now in this process."""
    with _slots._lock:
        return _slots.owners.get(owner, 0)
