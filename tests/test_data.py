"""The IDX loader: real files, and small files written here, good and bad; the committed copy in
data/mnist/ and the order in which the loader looks for data."""

import gzip
import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import core.data
from core.data import FILES, VALIDATION_SIZE, DataError, find_mnist, load_mnist, splits

ROOT = Path(__file__).resolve().parent.parent


def write_idx(path, array, magic=None, gz=True, cut=0):
    magic = magic if magic is not None else (0x803 if array.ndim == 3 else 0x801)
    raw = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    raw = raw[: len(raw) - cut] if cut else raw
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def make_folder(tmp_path, n_train=24, n_test=12, gz=True):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28)),
        "y_train": rng.integers(0, 10, n_train),
        "x_test": rng.integers(0, 256, (n_test, 28, 28)),
        "y_test": rng.integers(0, 10, n_test),
    }
    for key, stem in FILES.items():
        write_idx(tmp_path / stem, arrays[key], gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_reads_small_idx_folder(tmp_path, gz):
    arrays = make_folder(tmp_path, gz=gz)
    (x_train, _), (_, y_test) = load_mnist(tmp_path)
    assert x_train.dtype == np.uint8 and x_train.shape == (24, 28, 28)
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_env_var_is_used(tmp_path, monkeypatch):
    make_folder(tmp_path)
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    assert load_mnist()[0][0].shape == (24, 28, 28)


def test_missing_folder_says_how_to_point(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*MNIST_DIR"):
        load_mnist(tmp_path / "nope")


def test_missing_file_is_named(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.*missing"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_file_is_named(tmp_path, gz):
    make_folder(tmp_path, gz=gz)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((24, 28, 28)), gz=gz, cut=100)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*truncated"):
        load_mnist(tmp_path)


def test_cut_gzip_stream_is_named(tmp_path):
    make_folder(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz.*corrupt or truncated"):
        load_mnist(tmp_path)


def test_wrong_magic_is_named(tmp_path):
    make_folder(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((12, 28, 28)), magic=0x801 << 8 | 3)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.*magic"):
        load_mnist(tmp_path)


def test_count_mismatch(tmp_path):
    make_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(23))
    with pytest.raises(DataError, match="24 images but 23 labels"):
        load_mnist(tmp_path)


def test_label_out_of_range(tmp_path):
    make_folder(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(12, 11))
    with pytest.raises(DataError, match="label 11 is outside 0-9"):
        load_mnist(tmp_path)


def test_real_mnist_matches_keras_shapes_and_checksum(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert (x_train.shape, y_train.shape, x_test.shape, y_test.shape) == ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,))
    assert x_train.dtype == y_train.dtype == np.uint8
    # Rebuilt IDX bytes match the MD5s in the dataset's README: the loader returns exactly the file's data.
    import hashlib

    header = struct.pack(">IIII", 0x803, 10000, 28, 28)
    assert hashlib.md5(header + x_test.tobytes()).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    assert hashlib.md5(struct.pack(">II", 0x801, 60000) + y_train.tobytes()).hexdigest() == "a25bea736e30d166cdddb491f175f624"
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_validation_split_is_fixed_and_disjoint(mnist):
    train, val, test = splits(mnist)
    assert (len(train), len(val), len(test)) == (60000 - VALIDATION_SIZE, VALIDATION_SIZE, 10000)
    assert train.x.dtype == np.float32 and train.x.min() >= 0.0 and train.x.max() <= 1.0
    np.testing.assert_array_equal(val.x[-1], mnist[0][0][-1] / np.float32(255))
    sub_train, sub_val, _ = splits(mnist, subset=1000, seed=3)
    assert len(sub_train) == 1000
    np.testing.assert_array_equal(sub_val.x, val.x[: len(sub_val)])  # validation never mixes with training


def fake_keras_cache(home: Path, n_train=3, n_test=2):
    """A tiny mnist.npz where Keras keeps its download, under ``home`` (used as KERAS_HOME)."""
    cache = home / "datasets" / "mnist.npz"
    cache.parent.mkdir(parents=True)
    z = np.zeros
    np.savez(cache, x_train=z((n_train, 28, 28), np.uint8), y_train=z(n_train, np.uint8),
             x_test=z((n_test, 28, 28), np.uint8), y_test=z(n_test, np.uint8))
    return cache


def run_python(code: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter, importing this checkout's core from ``cwd``, without MNIST_DIR."""
    base = {k: v for k, v in os.environ.items() if k != "MNIST_DIR"}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [base.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=base | env,
                          check=False)


def test_committed_files_match_sha256sums():
    sums = {}
    for line in (core.data.COMMITTED_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        sums[name.lstrip("*")] = digest
    assert sorted(sums) == sorted(stem + ".gz" for stem in FILES.values())
    for name, digest in sums.items():
        assert hashlib.sha256((core.data.COMMITTED_DIR / name).read_bytes()).hexdigest() == digest, name


def test_committed_copy_is_read_without_keras_from_any_directory(tmp_path):
    """No data_dir, no MNIST_DIR, no Keras cache, no download: the committed copy, with NumPy only."""
    code = (
        "import sys; from core.data import find_mnist, load_mnist; d = load_mnist(download=False);"
        "print(d[0][0].shape, d[1][1].shape, find_mnist(download=False) is not None,"
        " 'keras' in sys.modules or 'tensorflow' in sys.modules)"
    )
    out = run_python(code, cwd=tmp_path, KERAS_HOME=str(tmp_path / "no-keras-here"))
    assert out.stdout.strip() == "(60000, 28, 28) (10000,) True False", out.stderr


def test_committed_copy_comes_before_keras_cache(tmp_path, monkeypatch):
    fake_keras_cache(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("MNIST_DIR", raising=False)
    read = []
    monkeypatch.setattr(core.data, "_load_folder", lambda folder: read.append(folder) or "committed")
    assert find_mnist(download=False) == "committed" and read == [core.data.COMMITTED_DIR]


def test_data_dir_then_env_var_come_before_committed_copy(tmp_path, monkeypatch):
    for name, n_train in (("env", 24), ("arg", 36)):
        (tmp_path / name).mkdir()
        make_folder(tmp_path / name, n_train=n_train)
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "env"))
    assert len(load_mnist()[0][0]) == 24
    assert len(load_mnist(tmp_path / "arg")[0][0]) == 36
    assert len(find_mnist(str(tmp_path / "arg"), download=False)[0][0]) == 36


@pytest.mark.parametrize("committed", ["absent", "incomplete"])
def test_missing_committed_copy_falls_back_to_keras_cache(tmp_path, monkeypatch, committed):
    folder = tmp_path / "mnist"
    if committed == "incomplete":
        folder.mkdir()
        make_folder(folder)
        (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(core.data, "COMMITTED_DIR", folder)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cache = fake_keras_cache(tmp_path)
    assert load_mnist(download=False)[0][0].shape == (3, 28, 28)
    cache.unlink()
    assert find_mnist(download=False) is None
    with pytest.raises(DataError, match=r"No MNIST data found.*data/mnist.*MNIST_DIR"):
        load_mnist(download=False)


def test_keras_cache_is_read_without_keras(tmp_path):
    """With no folder and no committed copy, Keras's cached mnist.npz is read by NumPy; download=False never
    imports Keras."""
    fake_keras_cache(tmp_path)
    code = (
        "import sys, core.data; core.data.COMMITTED_DIR = core.data.COMMITTED_DIR / 'absent';"
        "from core.data import find_mnist, load_mnist; d = load_mnist(download=False);"
        "print(d[0][0].shape, d[1][1].shape, 'keras' in sys.modules);"
        "import os; os.remove(os.environ['KERAS_HOME'] + '/datasets/mnist.npz'); print(find_mnist(download=False))"
    )
    out = run_python(code, cwd=ROOT, KERAS_HOME=str(tmp_path))
    assert out.stdout.split("\n")[:2] == ["(3, 28, 28) (2,) False", "None"], out.stderr
