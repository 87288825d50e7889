"""The training command, ``python -m core.train``: train, evaluate and save the models.

Trains all three models (or those named) on the full training set, evaluates them on
the test set (``core.evaluate``) and writes everything the dashboard shows to
``artifacts/`` (``core.artifacts``). The test set is only ever used after training,
never for choices. Writes are staged: Ctrl-C, SIGTERM or an error leaves the previous
artifacts as they were.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from core import artifacts
from core.augment import Augment
from core.data import DataError, checksum, load_mnist, splits
from core.evaluate import evaluate, seed_row, seed_table, single_image_ms
from core.models import MODELS, model_class
from core.settings import with_training
from core.styles import check_digits

SAMPLE_PER_CLASS = 50
SEEDS = 5  # runs per model by default: enough for a mean, a spread and a permutation test that can reach p < 0.05
ROOT = Path(__file__).resolve().parent.parent  # where ``python -m core.train`` runs for a worker


def write_sample(folder: Path, data, seed: int) -> None:
    """A fixed sample of test digits plus full-data summaries, so the app needs no dataset."""
    (x_train, y_train), (x_test, y_test) = data
    rng = np.random.default_rng(seed)
    index = np.concatenate([rng.choice(np.flatnonzero(y_test == d), SAMPLE_PER_CLASS, replace=False) for d in range(10)])
    means = np.stack([x_train[y_train == d].mean(0) / 255 for d in range(10)]).astype(np.float32)
    artifacts.write("sample", {
        "images": x_test[index], "labels": y_test[index], "index": index.astype(np.int32),
        "train_counts": np.bincount(y_train, minlength=10), "test_counts": np.bincount(y_test, minlength=10),
        "class_means": means,
    }, folder)


def versions() -> dict:
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "numpy": np.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}


def machine() -> str:
    """What a model trained on, for its training times: the CPU's name and how many of them (e.g. "AMD EPYC 7B13,
    2 CPUs"), so that times from two runs are compared only when they come from the same kind of machine."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: the platform's word for it
    name = " ".join((name or platform.processor() or platform.machine() or "unknown CPU").split())
    return f"{name}, {os.cpu_count() or 1} CPUs"


def settings_for(name: str, epochs=None, seed: int = 0, augment=None, augmentation: dict | Augment | None = None,
                 training: dict | None = None):
    """The model's default settings with the command's choices applied: what the run really uses.

    ``augmentation`` is either a whole ``Augment`` or a dict of only the strengths the command
    named; those replace the model's own, and the rest stay as the model's settings have them
    (the two MLPs are taught all three style strokes, LeNet the slash and the crossbar only).
    ``training``: other ``TrainSettings`` fields the command named (``TRAIN_OPTIONS``), the same way."""
    defaults = model_class(name).Settings()
    changes = {**(training or {}), "seed": seed}
    if epochs is not None:
        changes["epochs"] = epochs
    if augment is not None:
        changes["augment"] = augment
    if isinstance(augmentation, Augment):
        changes["augmentation"] = augmentation
    elif augmentation:
        changes["augmentation"] = dataclasses.replace(defaults.train.augmentation, **augmentation)
    return with_training(defaults, **changes)


def train(names, epochs=None, subset=None, data_dir=None, out=None, seed=0, augment=None, log=print,
          augmentation: dict | Augment | None = None, seeds: int = 1, jobs: int | None = None,
          training: dict | None = None) -> dict:
    """Train ``names`` and write their artifacts to ``out``; returns {name: metrics of the committed model}.

    ``epochs`` and ``augment`` (on or off) override each model's settings when given;
    ``augmentation`` overrides how strong it is: a whole ``Augment``, or a dict of some of its
    fields (None: each model's own strengths); ``training`` overrides other training settings the same way
    (``TRAIN_OPTIONS``: the gentler last epochs, sharpness-aware steps).
    With ``seeds`` > 1 every model is trained once per seed ``seed``, ``seed + 1``, ... with
    the same settings otherwise, in ``jobs`` worker processes; the model trained with ``seed``
    is the one kept, and every seed's test figures go to ``<model>/seeds.npz``.
    """
    if seeds < 1:
        raise ValueError("seeds must be at least 1")
    out = artifacts.check_out(artifacts.artifacts_dir(out))  # refuse a wrong --out before an hour of work
    began = time.perf_counter()
    data = load_mnist(data_dir)
    choices = {"epochs": epochs, "subset": subset, "data_dir": data_dir, "augment": augment,
               "augmentation": augmentation, "training": training}
    with artifacts.staging(out) as stage:
        manifest = {}
        if (stage / artifacts.MANIFEST).exists():
            try:
                manifest = artifacts.read("manifest", folder=stage)
            except artifacts.ArtifactError:
                manifest = {}  # unreadable or older: rewritten below
        if seeds == 1 and (jobs or 1) == 1:
            runs = {name: [_train_one(name, seed, data, stage / name, log=log, **choices)] for name in names}
        else:
            runs = _train_seeds(names, list(range(seed, seed + seeds)), jobs or default_jobs(), stage, log, choices)
            _retime(names, stage, splits(data, subset=subset, seed=seed)[2], log)
        results = {}
        for name, rows in runs.items():
            artifacts.write("seeds", seed_table(name, rows), stage, name)
            results[name] = artifacts.read("metrics", name, stage)
            manifest.setdefault("models", {})[name] = {
                "trained": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "subset": subset, "epochs": results[name].get("epochs") or 1, "seed": seed,
                "seeds": [int(r["seed"]) for r in rows], "machine": machine(),
            }
        write_sample(stage, data, seed)
        manifest |= {
            "format_version": artifacts.FORMAT_VERSION,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seed": seed,
            "data_checksum": checksum(data),
            "versions": versions(),
            "run": {"models": list(names), "seeds": seeds, "jobs": jobs or (1 if seeds == 1 else default_jobs()),
                    "seconds": round(time.perf_counter() - began, 1), "cpus": os.cpu_count()},
        }
        artifacts.write("manifest", manifest, stage)
    log(f"\nartifacts written to {out}")
    return results


def _train_one(name, seed, data, folder: Path, epochs=None, subset=None, data_dir=None, augment=None,
               augmentation=None, training=None, log=print) -> dict:
    """Train, calibrate, test and save one model in this process; returns its row of the seeds table."""
    train_split, val, test = splits(data, subset=subset, seed=seed)
    log(f"data: {len(train_split)} training, {len(val)} validation, {len(test)} test images")
    model = model_class(name)(settings_for(name, epochs, seed, augment, augmentation, training))
    log(f"\n{name}, seed {seed}: {model.num_params():,} parameters, {len(train_split):,} training images, "
        f"{model.settings}")
    start = time.perf_counter()

    def progress(r):
        log(f"  epoch {r['epoch']:>2}  loss {r['loss']:.4f}  acc {r['accuracy']:.4f}  "
            f"val_loss {r['val_loss']:.4f}  val_acc {r['val_accuracy']:.4f}  {r['seconds']:.1f}s")

    model.fit(train_split, val, on_epoch=progress)
    train_seconds = time.perf_counter() - start
    calibration = model.calibrate(val)  # on validation digits: the test set only ever scores
    result = evaluate(model, test, calibration, train_seconds=train_seconds, epochs=len(model.history),
                      train_size=len(train_split))
    if folder.exists():
        shutil.rmtree(folder)  # no stale files from another model format
    model.save(folder)
    for kind in ("metrics", "predictions", "misclassified"):
        artifacts.write(kind, getattr(result, kind), folder.parent, name)
    m = result.metrics
    log(f"  test accuracy {m['test_accuracy']:.4f} ({m['errors']} errors), trained in {train_seconds:.0f}s; "
        f"temperature {model.temperature:.2f}: validation ECE {calibration['val_ece_before']:.4f} -> "
        f"{calibration['val_ece_after']:.4f}")
    return seed_row(seed, m, result.predictions)


def _retime(names, stage: Path, test, log) -> None:
    """Time the kept models again here, with every core and nothing else running: a worker's
    timings were taken on one thread while other runs shared the machine."""
    for name in names:
        model = artifacts.load_model(name, stage)
        start = time.perf_counter()
        model.predict_proba(test.x)
        m = artifacts.read("metrics", name, stage)
        m["inference_ms_per_image"] = 1000 * (time.perf_counter() - start) / len(test)
        m["single_image_ms"] = single_image_ms(model, test.x)
        artifacts.write("metrics", m, stage, name)
        log(f"{name}: {m['single_image_ms']:.2f} ms for one image, {m['inference_ms_per_image']:.4f} ms per image "
            "in batches")


# --- many seeds: a few long-lived one-threaded worker processes ---------------------------------
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
               "TF_NUM_INTEROP_THREADS", "MNIST_TRAIN_THREADS")
ONE_THREAD = {name: "1" for name in THREAD_VARS}


def threads_env(n: int) -> dict[str, str]:
    """Environment that limits a process's NumPy, TensorFlow and augmentation threads to ``n``."""
    return {name: str(n) for name in THREAD_VARS}
COST = {"lenet": 3, "keras_mlp": 2, "numpy_mlp": 1}  # longest first, so the last runs overlap well
DONE = "@@done"  # a worker's line when a run's files are complete


def default_jobs() -> int:
    """One worker per core (at most 4): one small network uses a second thread poorly, a second run fully."""
    return max(1, min(4, os.cpu_count() or 1))


def worker_command(work: Path, choices: dict) -> list[str]:
    """``python -m core.train --worker`` with this run's choices: it reads ``<model> <seed>`` lines on
    stdin and trains each into ``work/<model>-<seed>``, so TensorFlow and MNIST load once per worker,
    not once per run (ten seconds a run)."""
    cmd = [sys.executable, "-m", "core.train", "--worker", "--out", str(work)]
    if choices["epochs"] is not None:
        cmd += ["--epochs", str(choices["epochs"])]
    if choices["subset"] is not None:
        cmd += ["--subset", str(choices["subset"])]
    if choices["data_dir"] is not None:
        cmd += ["--data-dir", str(choices["data_dir"])]
    if choices["augment"] is False:
        cmd += ["--no-augment"]
    given = choices["augmentation"]
    for field, value in (dataclasses.asdict(given) if isinstance(given, Augment) else given or {}).items():
        cmd += [f"--{field.replace('_', '-')}", value if isinstance(value, str) else repr(float(value))]
    for field, value in (choices.get("training") or {}).items():
        cmd += [f"--{field.replace('_', '-')}", repr(float(value))]
    return cmd


def serve(work: Path, choices: dict, lines=None, log=print) -> None:
    """A worker: train each ``<model> <seed>`` read from ``lines`` (stdin) into ``work/<model>-<seed>``:
    the model's files and its one-row ``seeds.npz``, then say ``@@done <model> <seed>``.

    A run depends only on its model and seed, never on the runs before it in this process: every
    model seeds all its generators when built, and Keras's state is cleared between runs."""
    data = load_mnist(choices["data_dir"])
    for line in sys.stdin if lines is None else lines:
        if not line.strip():
            continue
        name, s = line.split()
        folder = work / f"{name}-{s}"
        row = _train_one(name, int(s), data, folder / name, log=log, **choices)
        artifacts.write("seeds", seed_table(name, [row]), folder, name)
        if "keras" in sys.modules:  # loaded by a Keras model: free its graphs before the next run
            sys.modules["keras"].backend.clear_session()
        log(f"{DONE} {name} {s}")


def _train_seeds(names, seeds: list[int], jobs: int, stage: Path, log, choices: dict) -> dict[str, list[dict]]:
    """Every (model, seed) run, handed out one at a time to ``jobs`` worker processes of cores/jobs
    threads each (longest first); the first seed's model goes into ``stage``. Any failure or interrupt stops them
    all and raises."""
    tasks = [(name, s) for name in sorted(names, key=lambda n: -COST.get(n, 0)) for s in seeds]
    total, done, started = len(tasks), 0, time.perf_counter()
    jobs = min(jobs, total)
    log(f"{len(names)} model(s) x {len(seeds)} seeds = {total} runs, {jobs} at a time")
    work = Path(tempfile.mkdtemp(prefix=".runs-", dir=stage))  # removed below, before the stage is kept
    env = os.environ | threads_env(max(1, (os.cpu_count() or 1) // jobs))
    finished: queue.Queue = queue.Queue()  # (worker, name, seed) as each run's files are complete
    workers: list[_Worker] = []
    rows: dict[str, dict[int, dict]] = {name: {} for name in names}
    try:
        for _ in range(jobs):
            proc = subprocess.Popen(worker_command(work, choices), cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            w = _Worker(proc)
            w.reader = threading.Thread(target=_relay, args=(w, log, finished), daemon=True)
            w.reader.start()
            workers.append(w)
        while done < total:
            for w in workers:
                if w.task is None and tasks and w.proc.poll() is None:
                    w.give(*tasks.pop(0))
                    log(f"started {w.task[0]} seed {w.task[1]} ({total - len(tasks)} of {total})")
            try:
                w, name, s = finished.get(timeout=0.2)
            except queue.Empty:
                for w in workers:
                    w.check()
                if all(w.proc.poll() is not None for w in workers):
                    raise RuntimeError("every worker exited with runs left:\n" + "\n".join(workers[0].tail[-15:])) from None
                continue
            w.task = None
            folder = work / f"{name}-{s}"
            table = artifacts.read("seeds", name, folder)
            rows[name][s] = {k: (v[0] if k not in ("model", "label") else v) for k, v in table.items()}
            if s == seeds[0]:
                shutil.rmtree(stage / name, ignore_errors=True)
                shutil.copytree(folder / name, stage / name)
            shutil.rmtree(folder, ignore_errors=True)
            done += 1
            log(f"done {name} seed {s}: test accuracy {float(rows[name][s]['accuracy']):.4f} "
                f"({done} of {total} runs, {time.perf_counter() - started:.0f}s elapsed)")
    finally:
        for w in workers:
            if w.proc.poll() is None and w.task is not None:
                w.proc.terminate()  # an error or Ctrl-C: nothing of this run may outlive it
            w.close()
        for w in workers:
            try:
                w.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    return {name: [rows[name][s] for s in seeds] for name in names}


class _Worker:
    """One worker process, the run it is doing and the tail of what it printed."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.task, self.tail, self.reader = proc, None, [], None

    def give(self, name: str, seed: int) -> None:
        self.task = (name, seed)
        with contextlib.suppress(BrokenPipeError):  # it died: check() says how
            self.proc.stdin.write(f"{name} {seed}\n")
            self.proc.stdin.flush()

    def check(self) -> None:
        """Raise if the worker died during a run."""
        if self.task is not None and self.proc.poll() is not None:
            self.reader.join(timeout=5)
            name, s = self.task
            raise RuntimeError(f"{name} seed {s} failed (exit {self.proc.returncode}):\n" + "\n".join(self.tail[-15:]))

    def close(self) -> None:
        with contextlib.suppress(OSError):  # it is gone already
            self.proc.stdin.close()  # end of input: an idle worker exits


def _relay(w: _Worker, log, finished: queue.Queue) -> None:
    for line in w.proc.stdout:
        line = line.rstrip()
        w.tail.append(line)
        del w.tail[:-50]
        if line.startswith(DONE):
            _, name, s = line.split()
            finished.put((w, name, int(s)))
        elif line.strip().startswith(("epoch", "test accuracy")) and w.task is not None:
            log(f"[{w.task[0]} seed {w.task[1]}] {line.strip()}")


# name: (lowest, highest, metavar, help). Beyond these bounds a digit is no longer reliably itself.
AUGMENT_OPTIONS = {
    "rotate": (0, 90, "DEG", "largest rotation either way, degrees"),
    "shear": (0, 1, "F", "largest slant, as a fraction"),
    "scale": (0, 0.9, "F", "largest relative size change"),
    "shift": (0, 10, "PX", "largest move either way, pixels"),
    "stroke": (0, 1, "P", "share of images whose strokes are thickened or thinned by a pixel"),
    "styles": (0, 1, "P", "share of 0s, 1s and 7s shown each epoch with a slash, a flag or a crossbar"),
    "aspect": (0, 1, "F", "largest relative change of width against height"),
    "elastic": (0, 5, "PX", "largest elastic distortion, RMS pixels of a smooth random field"),
    "seven_tip": (0, 180, "DEG", "largest anticlockwise turn of a 7, which tips its bar down to the left"),
    "ink_gamma": (0, 2, "F", "largest change of the ink's tone curve: intensities raised to a power g, |ln g| up to F"),
}
# TrainSettings fields the command can change, as AUGMENT_OPTIONS: what the notebook's looks varied
# (docs/handwriting.md), so that any model's recipe with one of them changed is one command away.
TRAIN_OPTIONS = {
    "gentle_share": (0, 1, "F", "share of the last epochs that see every distortion at --gentle-strength (0: none)"),
    "gentle_strength": (0, 1, "F", "how strong the distortions of those last epochs are, as a fraction of the rest"),
    "sam": (0, 1, "RHO", "sharpness-aware steps within RHO of the weights (0: plain steps)"),
}
STYLE_DIGITS_HELP = "which digits --styles restyles: 0 slashed, 1 flagged, 7 crossed, e.g. 07 (default: each model's own)"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), metavar="NAME",
                   help=f"models to train (default: all): {', '.join(MODELS)}")
    p.add_argument("--epochs", type=int, help="epochs per model (default: each model's settings)")
    p.add_argument("--subset", type=int, metavar="N", help="train on N random training images (quick runs)")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MNIST_DIR, else Keras download)")
    p.add_argument("--out", default=None, help=f"artifacts folder (default: {artifacts.DEFAULT_DIR.name}/)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, batch order, augmentation, validation "
                   "split (default 0); the model trained with it is the one kept")
    p.add_argument("--seeds", type=int, default=SEEDS, metavar="N",
                   help="train every model N times, seeds SEED to SEED+N-1, and keep every run's test figures "
                        f"(default {SEEDS}, as the committed artifacts; 1 for a quick run)")
    p.add_argument("--jobs", type=int, default=None, metavar="J",
                   help=f"runs at once, each in its own process with cores/J threads (default with --seeds: "
                        f"{default_jobs()}, one per core)")
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                   help="turn data augmentation off")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a multi-seed run's worker (serve)
    a = p.add_argument_group("augmentation strength (each epoch, every image gets a fresh random draw up to these)")
    for field in dataclasses.fields(Augment):
        if field.name in AUGMENT_OPTIONS:
            low, high, unit, text = AUGMENT_OPTIONS[field.name]
            a.add_argument(f"--{field.name.replace('_', '-')}", type=float, default=None, metavar=unit,
                           help=f"{text} ({low:g} to {high:g}; default: each model's own settings)")
    a.add_argument("--style-digits", default=None, metavar="DIGITS", help=STYLE_DIGITS_HELP)
    t = p.add_argument_group("training (default: each model's own settings)")
    for name, (low, high, unit, text) in TRAIN_OPTIONS.items():
        t.add_argument(f"--{name.replace('_', '-')}", type=float, default=None, metavar=unit,
                       help=f"{text} ({low:g} to {high:g})")
    args = p.parse_args(argv)
    if args.style_digits is not None:
        try:
            check_digits(args.style_digits)
        except ValueError as e:
            p.error(f"--style-digits: {e}")
    for name, (low, high, _, _) in (AUGMENT_OPTIONS | TRAIN_OPTIONS).items():
        value = getattr(args, name)
        if value is not None and not low <= value <= high:
            p.error(f"--{name.replace('_', '-')} must be between {low:g} and {high:g}, not {value:g}")
    # only the strengths named on the command line replace the models' own
    args.augmentation = {name: getattr(args, name) for name in AUGMENT_OPTIONS if getattr(args, name) is not None}
    if args.style_digits is not None:
        args.augmentation["style_digits"] = args.style_digits
    args.training = {name: getattr(args, name) for name in TRAIN_OPTIONS if getattr(args, name) is not None}
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be at least 1")
    if not 1 <= args.seeds <= 50:
        p.error("--seeds must be between 1 and 50")
    if args.jobs is not None and not 1 <= args.jobs <= 16:
        p.error("--jobs must be between 1 and 16")
    if args.seed < 0:
        p.error("--seed must be 0 or more")
    if args.subset is not None and args.subset < 100:
        p.error("--subset must be at least 100 images")
    return args


def _terminate(signum, frame):
    raise KeyboardInterrupt  # unwinds through staging(), which discards the partial run


def _interrupted(error: BaseException) -> bool:
    """Whether ``error`` was raised while an interrupt unwound: cleanup code on the way (a zip file's
    close during ``np.savez``) can fail and replace the KeyboardInterrupt, which stays its context."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__context__
    return False


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    log = lambda s: print(s, flush=True)
    try:
        if args.worker:
            choices = {"epochs": args.epochs, "subset": args.subset, "data_dir": args.data_dir,
                       "augment": args.augment, "augmentation": args.augmentation, "training": args.training}
            serve(Path(args.out), choices, log=log)
        else:
            train(args.models, args.epochs, args.subset, args.data_dir, args.out, args.seed, args.augment,
                  log=log, augmentation=args.augmentation, seeds=args.seeds, jobs=args.jobs, training=args.training)
    except KeyboardInterrupt:
        return _say_interrupted()
    except (DataError, artifacts.ArtifactError, RuntimeError) as e:
        if _interrupted(e):
            return _say_interrupted()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if _interrupted(e):
            return _say_interrupted()
        raise
    return 0


def _say_interrupted() -> int:
    print("\ninterrupted: nothing written, the previous artifacts are untouched", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
