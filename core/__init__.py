"""Train, evaluate and load three MNIST digit classifiers that share one interface.

    from core import load_models
    models = load_models()                  # from artifacts/, or load_models(path)
    p = models["lenet"].predict_proba(x)    # x float32 (n, 28, 28) in [0, 1] -> (n, 10)

This package never imports Streamlit, and imports TensorFlow only when a Keras model is used.
It also owns how quiet TensorFlow is when it loads (below): the one place for that.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

# TensorFlow's start-up notices (cpu_feature_guard, oneDNN, absl) are not for the people running the CLI or
# the app. TensorFlow reads this once, when it loads, so it is set here, before any module can import it.
# Only logging changes: oneDNN stays on. Set TF_CPP_MIN_LOG_LEVEL=0 to see everything again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow 2.21 logs "oneDNN custom operations are on" through absl, which reads no environment variable
# and writes straight to file descriptor 2 while TensorFlow loads. So the first import of tensorflow (by
# whichever module) runs with fd 2 sent to a file, and every line but absl's below TF_CPP_MIN_LOG_LEVEL
# goes back to stderr afterwards.
_ABSL_LINE = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.-]+:\d+\] ")
_ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


@contextlib.contextmanager
def _absl_filtered_stderr(min_level: int):
    hidden = b"IWEF"[:min_level]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().splitlines(keepends=True):
                absl = _ABSL_LINE.match(line)
                if not (line.rstrip() == _ABSL_PREAMBLE or (absl and absl[1] in hidden)):
                    os.write(2, line)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: TensorFlow loads once per process
        try:
            min_level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
        except ValueError:
            min_level = 0
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or min_level < 1:
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module):
            with _absl_filtered_stderr(min_level):
                exec_module(module)

        spec.loader.exec_module = quiet_exec_module
        return spec


if "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, _QuietTensorFlowImport())

# Imported after the setup above, on purpose: nothing may import TensorFlow before it.
from core.models import MODELS, TITLES, model_class
from core.models.base import ArtifactError


def load_model(name: str, path=None):
    """One trained model from ``path`` (default ``artifacts/``); raises ArtifactError if unusable."""
    from core.artifacts import artifacts_dir

    return model_class(name).load(artifacts_dir(path) / name)


def load_models(path=None, names=None) -> dict:
    """All three trained models (or ``names``), in display order."""
    return {name: load_model(name, path) for name in (names or MODELS)}


__all__ = ["ArtifactError", "MODELS", "TITLES", "load_model", "load_models", "model_class"]
