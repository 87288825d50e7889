"""The process a live training runs in (``core.jobs`` starts it): ``python -m core.worker FOLDER``.

It trains one model as ``FOLDER/request.json`` says, at the lowest CPU priority (nice 19 and Linux's idle
scheduling class: it runs when no visitor's request wants the core) and with the thread counts
``core.jobs`` sets in its environment, so the web server's interpreter and cores stay free. It talks over
its pipes:

- stdout: one JSON object a line: ``{"event": "started", "train_size": N}``, ``{"event": "batch",
  "fraction": F}`` (a few a second at most), ``{"event": "epoch", "record": {...}}``, ``{"event":
  "evaluating"}``, then ``{"event": "done", "stopped": bool, "metrics": {...}}`` once the model is saved in
  ``FOLDER/model`` with its own safe ``save`` and the predictions and mistakes in ``FOLDER/*.npz``; or
  ``{"event": "stopped_early"}`` (stopped before training began) or ``{"event": "error", "error": "..."}``.
  Anything a library prints goes to stderr instead, so it cannot break a line.
- stdin: the line ``stop`` finishes the current batch and keeps what was learnt (it is still evaluated and
  saved). End of file means the server has gone: the worker removes FOLDER and exits at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

NICE = 19  # added to the server's niceness (the lowest priority is 19): visitors' requests always come first
BATCH_EVERY = 0.25  # seconds between two progress lines within an epoch
DATA_FILE = "data.npz"  # the dataset, when the server had it in memory rather than in a folder
REQUEST_FILE = "request.json"
MODEL_DIR = "model"


def _listen(folder: Path, stop: threading.Event) -> None:
    """Read the server's requests; at end of file (the server has gone) clean up and leave at once."""
    for line in sys.stdin:
        if line.strip() == "stop":
            stop.set()
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(0)  # nobody is there to receive a result: no evaluation, nothing saved


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0])
    os.nice(NICE)
    with contextlib.suppress(AttributeError, OSError):  # Linux: run only when no visitor's request wants a core
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # before any thread starts: they inherit it
    out = os.fdopen(os.dup(1), "w", buffering=1)  # our lines only: libraries' prints go to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(**event) -> None:
        out.write(json.dumps(event, default=float) + "\n")

    stop = threading.Event()
    threading.Thread(target=_listen, args=(folder, stop), daemon=True).start()
    try:
        import numpy as np

        from core.data import DataError, find_mnist, how_to_point, splits
        from core.evaluate import evaluate
        from core.models import model_class
        from core.settings import from_dict

        request = json.loads((folder / REQUEST_FILE).read_text())
        if (folder / DATA_FILE).is_file():
            with np.load(folder / DATA_FILE, allow_pickle=False) as f:
                data = (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
        else:
            data = find_mnist(request.get("data_dir"))
            if data is None:
                raise DataError(f"No MNIST data found. {how_to_point()}")
        cls = model_class(request["model"])
        model = cls(from_dict(cls.Settings, request["settings"]))
        started = time.time()
        train, val, test = splits(data, subset=request["subset"], seed=model.settings.train.seed)
        del data
        if stop.is_set():
            emit(event="stopped_early")
            return 0
        emit(event="started", train_size=len(train))
        last = [0.0]

        def on_batch(fraction):
            now = time.monotonic()
            if now - last[0] >= BATCH_EVERY:
                last[0] = now
                emit(event="batch", fraction=float(fraction))
            return not stop.is_set()

        def on_epoch(record):
            emit(event="epoch", record=record)
            return not stop.is_set()

        model.fit(train, val, on_epoch=on_epoch, on_batch=on_batch)
        emit(event="evaluating")
        calibration = model.calibrate(val)
        # Not the test set read five ways (LeNet: ~10 s more on two cores): a visitor is waiting for this model.
        result = evaluate(model, test, calibration, tta=False, train_seconds=time.time() - started,
                          epochs=len(model.history), train_size=len(train))
        model.save(folder / MODEL_DIR)
        np.savez(folder / "predictions.npz", **result.predictions)
        np.savez(folder / "misclassified.npz", **result.misclassified)
        emit(event="done", stopped=stop.is_set(), metrics=result.metrics)
        return 0
    except Exception as e:  # said on the Train page; the traceback, on stderr, goes to the server's log
        import traceback

        traceback.print_exc()
        emit(event="error", error=f"{type(e).__name__}: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
