"""TensorFlow's start-up notices stay out of the command line (core/__init__.py), and nothing else does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from core.quiet_tf import _absl_filtered_stderr

ROOT = Path(__file__).resolve().parent.parent
NOISE = re.compile(r"oneDNN|cpu_feature_guard|absl|To enable the following instructions|^[IWEF]\d{4} ", re.MULTILINE)


def test_predict_cli_prints_no_tensorflow_start_up_lines(tmp_path):
    """The committed Keras models load (TensorFlow starts) and stderr has none of its notices."""
    with np.load(ROOT / "artifacts" / "sample.npz") as f:
        Image.fromarray(f["images"][0]).save(tmp_path / "digit.png")
    # Without the TF_CPP_MIN_LOG_LEVEL that conftest sets: core must set its own default.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-m", "core.predict", str(tmp_path / "digit.png")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "LeNet-5 CNN (Keras)" in out.stdout
    assert not NOISE.search(out.stderr), out.stderr


def test_filter_keeps_everything_but_quiet_absl_lines(capfd):
    with _absl_filtered_stderr(2):
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1795273221.755949   10337 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"W0000 00:00:1795273221.755949   10337 x.cc:1] a warning below level 2\n")
        os.write(2, b"E0000 00:00:1795273221.755949   10337 x.cc:2] a real error\n")
        os.write(2, b"some_module.py:1: UserWarning: not TensorFlow's to hide\n")
    assert capfd.readouterr().err == ("E0000 00:00:1795273221.755949   10337 x.cc:2] a real error\n"
                                      "some_module.py:1: UserWarning: not TensorFlow's to hide\n")


ONEDNN = ("import core, tensorflow; from tensorflow.python.util import _pywrap_util_port as port; "
          "print(port.IsMklEnabled())")


def test_tensorflow_uses_onednn_unless_told_not_to():
    """core asks for oneDNN's kernels (TensorFlow enables them by itself only on some CPUs); a user's 0 wins."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    for given, expected in ((None, "True"), ("0", "False")):
        run_env = env | ({"TF_ENABLE_ONEDNN_OPTS": given} if given else {})
        out = subprocess.run([sys.executable, "-c", ONEDNN], cwd=ROOT, env=run_env, capture_output=True, text=True,
                             timeout=300, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == expected, (given, out.stdout, out.stderr)
