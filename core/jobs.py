"""Training jobs: a model training in a worker process that anyone can watch and stop; the engine of
the dashboard's Train page, and the limits it runs under.

    job = TrainingJob.start("lenet", {"epochs": 3, "lr": 2e-3}, subset=5000, data=load_mnist())
    job.progress()        # {"state": "running", "epoch": 1, "fraction": 0.4, "history": [...], ...}
    job.stop()            # finishes the current batch, keeps what was learnt
    job.wait()            # -> the finished job; job.model, job.metrics, job.predictions, job.misclassified

Training runs in a child process, ``python -m core.worker`` (niced, one thread per library), through
the models' own ``fit`` (the loop ``python -m core.train`` uses): it cannot hold the server's interpreter
or take both cores of a small machine, and its memory is returned when it ends. The worker sends its
progress as JSON lines, stops on request after the current batch, evaluates and saves the model with its
own safe ``save`` into a temporary folder; the job loads it back and removes the folder. Nothing is kept
on disk: a job's model lives only as long as whoever holds the job. A worker whose job is abandoned, or
whose server exits, is killed and reaped (the worker also leaves by itself when its server's pipe closes).

Limits keep a small shared machine alive: ``MAX_SUBSET`` training images, ``MAX_EPOCHS`` epochs,
``MAX_JOBS`` jobs training at once from this process and ``MAX_JOBS_PER_OWNER`` per owner (whoever starts
it: the dashboard passes one id per browser); a request over them raises ``LimitError`` saying what is
allowed. They are checked on the settings the job will really use: the model's own defaults with the
request's changes applied. The first three are read from the environment (``LIMIT_VARIABLES``) and, via
``configure``, from whatever settings the caller passes (the dashboard: Streamlit secrets); a bad value is
reported and the default kept. A job can be told how to see that its owner has gone (``alive``): it then
stops ``ORPHAN_GRACE`` seconds after, freeing its slot.

    job = TrainingJob.start("lenet", subset=5000, owner="browser-1", alive=lambda: tab_is_open())
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from core import worker
from core.artifacts import read_npz
from core.models import SPECS, model_class
from core.settings import TrainSettings, to_dict, with_training
from core.train import ONE_THREAD

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)

# The limits an operator may change, their environment variables (or Streamlit secrets of the same
# names), defaults and allowed ranges. The defaults are for a 1 GB machine (Streamlit Community Cloud): the
# server and one LeNet worker on 5,000 images peak at ~1,050 MB with shared pages counted once, ~1,140 MB on
# 20,000 (README, "Live training"); a second worker would not fit.
LIMIT_VARIABLES = {
    "MAX_JOBS": ("MNIST_MAX_TRAINING_JOBS", 1, 1, 8, "jobs training at once"),
    "MAX_SUBSET": ("MNIST_MAX_TRAINING_IMAGES", 5000, 1000, 55_000, "training images per job"),
    "MAX_EPOCHS": ("MNIST_MAX_EPOCHS", 10, 1, 50, "epochs per job"),
}
MAX_SUBSET = 5000  # training images per job
MIN_SUBSET = 100
MAX_EPOCHS = 10
MAX_JOBS = 1  # jobs training at the same time from one server process
MAX_JOBS_PER_OWNER = 1  # of those, one per owner: one visitor with two tabs cannot take both
ORPHAN_GRACE = 10.0  # seconds a job trains on once its owner is gone; coming back within them keeps it
ALIVE_EVERY = 1.0  # seconds between two looks at whether the owner is still there
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
TUNABLE = ("epochs", "batch_size", "lr", "augment", "seed")

DEFAULT_EPOCHS = 3  # a live run's epochs unless the visitor chooses: a minute, not the full schedule


class LimitError(ValueError):
    """A training request is over this server's limits; the message says which and what is allowed."""


# One thread per library in the worker, as in core.train's workers, so one job takes one core.
WORKER_ENV = ONE_THREAD | {"TF_CPP_MIN_LOG_LEVEL": "2"}
STOP_TIMEOUT = 10.0  # seconds a worker gets to finish after being killed or asked to go, before SIGKILL

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
PROBLEMS: list[str] = []  # what was wrong with the configured limits last time they were read


def configure(settings: Mapping | None = None, environ: Mapping | None = None) -> list[str]:
    """Set ``MAX_JOBS``, ``MAX_SUBSET`` and ``MAX_EPOCHS`` from ``environ`` (default ``os.environ``), else
    ``settings`` (e.g. Streamlit secrets, same names), else the defaults. Returns (and keeps in ``PROBLEMS``)
    one message per value that is not a whole number in range; that limit keeps its default."""
    environ = os.environ if environ is None else environ
    settings = settings or {}
    problems, values = [], {}
    for attr, (var, default, low, high, what) in LIMIT_VARIABLES.items():
        source, raw = (("environment variable", environ[var]) if var in environ else
                       ("setting", settings[var]) if var in settings else (None, default))
        value = default
        if source is not None:
            try:
                if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                    raise ValueError
                value = int(str(raw).strip().replace("_", "").replace(",", ""))
                if not low <= value <= high:
                    raise ValueError
            except (TypeError, ValueError):
                value = default
                problems.append(f"{source} {var}={str(raw)!r} is not a whole number from {low:,} to {high:,} "
                                f"({what}); using the default, {default:,}.")
        values[attr] = value
    for message in problems:
        if message not in PROBLEMS:
            log.warning("training limits: %s", message)
    globals().update(values)
    PROBLEMS[:] = problems
    with _slots._lock:
        _slots.size = values["MAX_JOBS"]
    return problems


def limits() -> dict:
    """The limits in force: {"max_jobs", "max_jobs_per_owner", "max_images", "min_images", "max_epochs",
    "orphan_grace"}."""
    return {"max_jobs": MAX_JOBS, "max_jobs_per_owner": MAX_JOBS_PER_OWNER, "max_images": MAX_SUBSET,
            "min_images": MIN_SUBSET, "max_epochs": MAX_EPOCHS, "orphan_grace": ORPHAN_GRACE}


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
    """One model training in its own worker process; every method is safe to call from any thread.

    ``pid`` is the worker's process id and ``folder`` its temporary folder, both while it runs.
    """

    def __init__(self, model_name: str, overrides: dict | None = None, subset: int = 5000, data=None, data_dir=None,
                 owner: str | None = None, alive: Callable[[], bool] | None = None, grace: float = ORPHAN_GRACE):
        self.settings = resolve(model_name, dict(overrides or {}))
        check_limits(self.settings.train, subset)
        self.model_name, self.title, self.subset = model_name, SPECS[model_name].title, int(subset)
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
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.folder: Path | None = None

    @classmethod
    def start(cls, model_name: str, overrides: dict | None = None, subset: int = 5000, data=None, data_dir=None,
              owner: str | None = None, alive: Callable[[], bool] | None = None,
              grace: float = ORPHAN_GRACE) -> TrainingJob:
        """Check the request, take one of the ``MAX_JOBS`` training slots (and of the owner's
        ``MAX_JOBS_PER_OWNER``) and start its worker; raises LimitError.

        ``data`` (MNIST as ``load_mnist`` returns it) is handed to the worker in a file; without it the
        worker loads ``data_dir`` (default: where ``core.data`` finds MNIST) itself.
        ``alive``, if given, is asked every ``ALIVE_EVERY`` seconds (from a watcher thread) whether the owner
        is still there; once it has answered False for ``grace`` seconds, the worker is killed, skipping the
        evaluation nobody would see. An exception from it counts as "still there".
        """
        job = cls(model_name, overrides, subset, data, data_dir, owner, alive, grace)
        _slots.take(owner)
        try:
            job._spawn()
        except BaseException:
            job._cleanup()
            _slots.give_back(owner)
            raise
        return job

    def _spawn(self) -> None:
        self._started = time.time()
        self.folder = Path(tempfile.mkdtemp(prefix="mnist-job-"))
        request = {"model": self.model_name, "settings": to_dict(self.settings), "subset": self.subset,
                   "data_dir": None if self._data_dir is None else str(self._data_dir)}
        (self.folder / worker.REQUEST_FILE).write_text(json.dumps(request))
        if self._data is not None:
            (x_train, y_train), (x_test, y_test) = self._data
            np.savez(self.folder / worker.DATA_FILE, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
            self._data = None  # the worker has its copy; do not hold the caller's arrays
        self._log = open(self.folder / "worker.log", "w+b")  # noqa: SIM115 (closed in _cleanup)
        self.proc = subprocess.Popen([sys.executable, "-m", "core.worker", str(self.folder)], cwd=ROOT,
                                     env=os.environ | WORKER_ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True, bufsize=1)
        self.pid = self.proc.pid
        _live.add(self)
        threading.Thread(target=self._read, name=f"train-{self.model_name}", daemon=True).start()
        if self._alive is not None:
            threading.Thread(target=self._watch, name=f"watch-{self.model_name}", daemon=True).start()

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
        self._tell("stop")

    def wait(self, timeout: float | None = None) -> TrainingJob:
        self._done.wait(timeout)
        return self

    def kill(self) -> None:
        """End the worker now (SIGKILL), without a result: abandoned jobs and server exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # Popen ignores a process that has just ended

    # --- the threads ---------------------------------------------------------------------------
    def _tell(self, line: str) -> None:
        try:
            if self.proc is not None and self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.write(line + "\n")
                self.proc.stdin.flush()
        except (OSError, ValueError):  # the worker has already gone: its reader reports why
            pass

    def _set(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self, "_" + k, v)

    def _watch(self) -> None:
        while not self._done.wait(ALIVE_EVERY):
            self._watched()

    def _watched(self) -> None:
        """Kill the worker once its owner has been gone for ``grace`` seconds (looks at most every ``ALIVE_EVERY``)."""
        now = time.monotonic()
        if self._alive is None or now - self._last_look < ALIVE_EVERY * 0.9:
            return
        self._last_look = now
        try:
            there = bool(self._alive())
        except Exception:  # a broken check must never stop someone's training
            log.warning("the alive check of %s failed", self.model_name, exc_info=True)
            there = True
        if there:
            self._gone_since = None
            return
        if self._gone_since is None:
            self._gone_since = now
        if now - self._gone_since >= self._grace and not self.abandoned:
            self.abandoned = True
            self._stop.set()
            self.kill()

    def _on_event(self, event: dict, outcome: dict) -> None:
        kind = event.get("event")
        if kind == "batch":
            self._set(epoch_fraction=float(event["fraction"]))
        elif kind == "epoch":
            with self._lock:
                self._history.append(dict(event["record"]))
                self._epoch_fraction = 0.0
                if self._state == "running":
                    self._message = f"Epoch {event['record']['epoch']} of {self.epochs} done."
        elif kind == "started":
            self.train_size = int(event["train_size"])
            with self._lock:
                if self._state == "starting":
                    self._state, self._message = "running", f"Training on {self.train_size:,} images…"
        elif kind == "evaluating":
            self._set(state="evaluating", message="Calibrating, then testing on the 10,000 test digits…")
        else:
            outcome.update(event)

    def _read(self) -> None:
        outcome: dict = {}
        try:
            for line in self.proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self._on_event(event, outcome)
            self.proc.wait()
            self._finish(outcome)
        except Exception as e:  # shown on the page; the thread must never die silently
            log.exception("training %s failed", self.model_name)
            self._set(state="error", error=f"{type(e).__name__}: {e}", message="Training failed.")
        finally:
            self._cleanup()
            self._set(finished=time.time())
            _slots.give_back(self.owner)
            self._done.set()

    def _finish(self, outcome: dict) -> None:
        """Set the final state from the worker's last word and its exit; load the model it saved."""
        kind, rc = outcome.get("event"), self.proc.returncode
        if self.abandoned:
            self._set(state="stopped", message=f"Stopped after {len(self._history)} epoch(s): whoever started it "
                                               "has gone.")
        elif kind == "stopped_early":
            self._set(state="stopped", message="Stopped before training began.")
        elif kind == "error":
            log.warning("training %s failed: %s", self.model_name, self._log_tail(40))
            self._set(state="error", error=outcome.get("error") or "unknown error", message="Training failed.")
        elif kind == "done" and rc == 0:
            model = model_class(self.model_name).load(self.folder / worker.MODEL_DIR)
            self.predictions = read_npz(self.folder / "predictions.npz", ("probs", "pred", "label"))
            self.misclassified = read_npz(self.folder / "misclassified.npz",
                                          ("index", "image", "label", "pred", "probs"))
            self.metrics, self.model = outcome["metrics"], model
            stopped = bool(outcome.get("stopped"))
            self._set(state="stopped" if stopped else "done",
                      message=(f"{'Stopped' if stopped else 'Finished'} after {len(model.history)} epoch(s): "
                               f"test accuracy {self.metrics['test_accuracy']:.2%}."))
        else:
            how = (f"was killed by {signal.Signals(-rc).name}" if rc is not None and rc < 0
                   and -rc in signal.Signals._value2member_map_ else f"exited with code {rc}")
            hint = " (perhaps the machine ran out of memory)" if rc == -signal.SIGKILL else ""
            log.warning("training worker of %s %s: %s", self.model_name, how, self._log_tail(40))
            self._set(state="error", message="Training failed.",
                      error=f"The training process {how}{hint} before it finished; nothing was kept. "
                            f"{self._log_tail()}".strip())

    def _log_tail(self, lines: int = 3) -> str:
        """The worker's last lines on stderr (a crash's reason), for the error message."""
        try:
            self._log.flush()
            self._log.seek(0)
            text = self._log.read().decode(errors="replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return ("Its last words: " + " / ".join(t.strip() for t in text[-lines:])) if text else ""

    def _cleanup(self) -> None:
        """Reap the worker (killing it if need be), close the pipes, remove the temporary folder."""
        proc = self.proc
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout):
                try:
                    if pipe:
                        pipe.close()
                except OSError:
                    pass
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                proc.wait()
        if getattr(self, "_log", None) is not None:
            self._log.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        _live.discard(self)


_live: set[TrainingJob] = set()  # jobs whose worker may still run: killed when this process exits


@atexit.register
def _kill_all() -> None:
    for job in list(_live):
        job.kill()
        if job.proc is not None:
            job.proc.wait()
        if job.folder is not None:
            shutil.rmtree(job.folder, ignore_errors=True)


def slots_free() -> int:
    """How many more jobs could start now in this process (0 to MAX_JOBS)."""
    return _slots.free()


def training(owner: str) -> int:
    """How many jobs ``owner`` has training now in this process."""
    with _slots._lock:
        return _slots.owners.get(owner, 0)


configure()
