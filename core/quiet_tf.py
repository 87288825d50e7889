"""What TensorFlow is told before it loads: to keep quiet (its start-up notices, cpu_feature_guard,
oneDNN, absl, are not for the people running the CLI or the app) and to use oneDNN's kernels on
every CPU. install() is called once, by core/__init__.py, before any module can import TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

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



def install() -> None:
    """Quiet TensorFlow's next (first) import and ask it for oneDNN. Set TF_CPP_MIN_LOG_LEVEL=0 to see
    everything again; TF_ENABLE_ONEDNN_OPTS=0 for TensorFlow's own kernels."""
    # TensorFlow turns oneDNN on by itself only on CPUs with deep-learning instructions (AVX-512 VNNI, BF16,
    # AMX). On a 2-core AVX2 AMD EPYC it left it off and LeNet trained at half the speed (10 epochs 418 s -> 217 s).
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    # TensorFlow reads this once, when it loads: cpu_feature_guard and other C++ notices go.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
