"""How far each model's recipe reaches over seeds, on MNIST and on other people's handwriting (issue #12).

    python -m tools.seed_spread [--models NAME ...] [--seeds N] [--seed S] [--jobs J] [--work DIR]
                                [--epochs E] [--subset N] [--limit N] [--data-dir DIR] [--handwriting DIR] [--tta]
                                [--gentle-share F] [--gentle-strength F] [--sam RHO]

Trains each model at seeds S .. S+N-1 with the project's own command (``python -m core.train --seeds 1``,
one thread a run, J runs at once, as the committed run trains its seeds) into ``--work``, not ``artifacts/``,
keeping every seed's weights; a run already there is reused, so an interrupted spread picks up where it
stopped. Then it prepares the development sets once, as ``core.beyond`` does, and prints for each model and
set: every seed's accuracy, their mean and standard deviation, the accuracy of the seeds' averaged
probabilities (an ensemble: not one of the app's models, but the most that chance in training can give one
recipe), and how many digits every seed misreads (what the recipe itself teaches). The notebook's
thirteenth look (docs/handwriting.md) is this command's output at five seeds. ``--tta`` reads every digit,
MNIST's too, as the Draw page does (each digit and its ``TTA_WARPS`` views, averaged) instead of once.
``--gentle-share``, ``--gentle-strength`` and ``--sam`` are passed to every run (``core.train``'s
``TRAIN_OPTIONS``): a recipe with one setting changed, beside the committed one. Runs already in ``--work`` are
reused whatever the flags, so each variant needs a ``--work`` of its own.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core import artifacts, beyond
from core.models import MODELS
from core.train import COST, TRAIN_OPTIONS, threads_env

ROOT = Path(__file__).resolve().parents[1]  # core.train runs as a module from the project's root


def train_command(name: str, seed: int, folder: Path, epochs=None, subset=None, data_dir=None,
                  training: dict | None = None) -> list[str]:
    """``python -m core.train`` for one model at one seed, written to ``folder``; ``training``: the
    ``TRAIN_OPTIONS`` changed for every run (a recipe with one setting changed)."""
    cmd = [sys.executable, "-m", "core.train", "--models", name, "--seed", str(seed), "--seeds", "1",
           "--jobs", "1", "--out", str(folder)]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    if subset is not None:
        cmd += ["--subset", str(subset)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    for field, value in (training or {}).items():
        cmd += [f"--{field.replace('_', '-')}", repr(float(value))]
    return cmd


def run_folder(work: Path, name: str, seed: int) -> Path:
    return Path(work) / f"{name}-{seed}"


def train_all(names, seeds, work: Path, jobs: int = 2, log=print, **choices) -> None:
    """Every (model, seed) not yet in ``work``, ``jobs`` one-threaded runs at a time, longest models first.
    A run that fails stops the spread with its own log's last lines."""
    todo = [(n, s) for n in sorted(names, key=lambda n: -COST.get(n, 0)) for s in seeds
            if not (run_folder(work, n, s) / n / "metrics.json").exists()]
    if not todo:
        return
    log(f"training {len(todo)} run(s), {jobs} at a time, into {work}")
    env = {**os.environ, **threads_env(1)}

    def one(task):
        name, seed = task
        folder, logfile = run_folder(work, name, seed), run_folder(work, name, seed).with_suffix(".log")
        Path(work).mkdir(parents=True, exist_ok=True)
        with open(logfile, "w") as out:  # beside the folder: core.train wants a new or artifacts folder
            rc = subprocess.call(train_command(name, seed, folder, **choices), stdout=out,
                                 stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        if rc != 0:
            tail = logfile.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{name} at seed {seed} failed (exit {rc}):\n" + "\n".join(tail))
        log(f"  {name}, seed {seed}: trained")

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, todo))


def summarise(probs: list[np.ndarray], labels: np.ndarray, no_digit: np.ndarray | None = None) -> dict:
    """Per-seed accuracies, their mean and sd, the averaged probabilities' accuracy and the digits every seed
    misreads. A digit the preprocessing found no digit in is wrong for every seed and for the ensemble."""
    labels = np.asarray(labels)
    answered = np.ones(len(labels), bool) if no_digit is None else ~np.asarray(no_digit, bool)
    right = np.array([(np.asarray(p).argmax(1) == labels) & answered for p in probs])
    ensemble = (np.mean([np.asarray(p, np.float64) for p in probs], 0).argmax(1) == labels) & answered
    acc = right.mean(1)
    return {"n": len(labels), "seeds": acc.tolist(), "mean": float(acc.mean()),
            "sd": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, "ensemble": float(ensemble.mean()),
            "errors": (~right).sum(1).tolist(), "wrong_at_every_seed": int((~right).all(0).sum()),
            "ensemble_errors": int((~ensemble).sum())}


def spread(names, seeds, work: Path, limit=None, handwriting=None, log=print, tta: bool = False,
           data_dir=None) -> dict:
    """{model: {set: summary}} from the runs in ``work``: MNIST test from each run's saved test probabilities
    (read again with ``tta``), the development sets prepared once and read by every seed's model."""
    runs = {n: {s: artifacts.load_model(n, run_folder(work, n, s)) for s in seeds} for n in names}
    read = (lambda m, x: m.tta_proba(x, calibrated=False)) if tta else (lambda m, x: m.predict_proba(x))
    out = {n: {} for n in names}
    test = None
    if tta:
        from core.data import load_mnist, scale

        _, (x_test, y_test) = load_mnist(data_dir)
        test = scale(x_test), y_test
    for n in names:
        if tta:
            out[n]["mnist"] = summarise([read(runs[n][s], test[0]) for s in seeds], test[1])
            continue
        preds = [artifacts.read("predictions", n, run_folder(work, n, s)) for s in seeds]
        out[n]["mnist"] = summarise([p["probs"] for p in preds], preds[0]["label"])
    _, data = beyond.load(handwriting)
    for cond in beyond.CONDITIONS:
        labels = data[cond.set]["label"]
        indices = beyond.select(labels, limit, 0)
        log(f"preparing {cond.title}: {len(indices):,} digits")
        x, no_digit, _ = beyond.prepare(data[cond.set], cond, indices, 0)
        for n in names:
            out[n][cond.key] = summarise([read(runs[n][s], x) for s in seeds], labels[indices], no_digit)
    return out


def table(result: dict) -> str:
    """A Markdown table: one row per model and set."""
    rows = ["| model | set | each seed (%) | mean (sd) | seeds averaged | errors, each seed | wrong at every seed |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, sets in result.items():
        for key, r in sets.items():
            rows.append(f"| `{name}` | {key} ({r['n']:,}) | {' / '.join(f'{100 * a:.2f}' for a in r['seeds'])} | "
                        f"{100 * r['mean']:.2f} ({100 * r['sd']:.2f}) | {100 * r['ensemble']:.2f} | "
                        f"{' / '.join(map(str, r['errors']))} | {r['wrong_at_every_seed']} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.seed_spread", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, metavar="NAME")
    p.add_argument("--seeds", type=int, default=5, help="seeds per model (default 5, as the committed run)")
    p.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (default 2)")
    p.add_argument("--work", type=Path, default=Path("seed_spread"), help="where every seed's run is kept")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: each model's settings)")
    p.add_argument("--subset", type=int, default=None, help="training images (quick runs)")
    p.add_argument("--limit", type=int, default=None, help="digits per development set (default: all)")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: as core.train finds it)")
    p.add_argument("--handwriting", default=None, help="handwriting folder (default: as core.beyond finds it)")
    p.add_argument("--tta", action="store_true", help="read every digit as the Draw page does, with test-time "
                   "augmentation, instead of once")
    for name, (low, high, unit, text) in TRAIN_OPTIONS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=None, metavar=unit,
                       help=f"{text} ({low:g} to {high:g}; default: each model's own). Use a --work of its own")
    args = p.parse_args(argv)
    training = {name: getattr(args, name) for name in TRAIN_OPTIONS if getattr(args, name) is not None}
    for name, value in training.items():
        low, high = TRAIN_OPTIONS[name][:2]
        if not low <= value <= high:
            p.error(f"--{name.replace('_', '-')} must be between {low:g} and {high:g}, not {value:g}")
    if not 2 <= args.seeds <= 50:
        p.error("--seeds must be between 2 and 50: a spread needs two seeds at least")
    if not 1 <= args.jobs <= 16:
        p.error("--jobs must be between 1 and 16")
    seeds = list(range(args.seed, args.seed + args.seeds))
    try:
        beyond.find_data(args.handwriting)
    except beyond.DataMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        train_all(args.models, seeds, args.work, args.jobs, epochs=args.epochs, subset=args.subset,
                  data_dir=args.data_dir, training=training)
        result = spread(args.models, seeds, args.work, args.limit, args.handwriting, tta=args.tta,
                        data_dir=args.data_dir)
    except (RuntimeError, beyond.DataError, artifacts.ArtifactError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
