"""The IDX loader: real files, and small files written here, good and bad."""

import gzip
import struct

import numpy as np
import pytest

from core.data import FILES, VALIDATION_SIZE, DataError, load_mnist, splits


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
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path)
    assert x_train.dtype == np.uint8 and x_train.shape == (24, 28, 28)
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_env_var_is_used(tmp_path, monkeypatch):
    make_folder(tmp_path)
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    assert load_mnist()[0][0].shape == (24, 28, 28)


def test_missing_folder_says_how_to_point(tmp_path):
    with pytest.raises(DataError, match="does not exist.*MNIST_DIR"):
        load_mnist(tmp_path / "nope")


def test_missing_file_is_named(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*missing"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_file_is_named(tmp_path, gz):
    make_folder(tmp_path, gz=gz)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((24, 28, 28)), gz=gz, cut=100)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        load_mnist(tmp_path)


def test_cut_gzip_stream_is_named(tmp_path):
    make_folder(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz.*corrupt or truncated"):
        load_mnist(tmp_path)


def test_wrong_magic_is_named(tmp_path):
    make_folder(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((12, 28, 28)), magic=0x801 << 8 | 3)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*magic"):
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
    assert train.x.dtype == np.float32 and 0.0 <= train.x.min() and train.x.max() <= 1.0
    np.testing.assert_array_equal(val.x[-1], mnist[0][0][-1] / np.float32(255))
    sub_train, sub_val, _ = splits(mnist, subset=1000, seed=3)
    assert len(sub_train) == 1000
    np.testing.assert_array_equal(sub_val.x, val.x[: len(sub_val)])  # validation never mixes with training


def test_keras_cache_is_read_without_keras(tmp_path):
    """With no folder given, Keras's cached mnist.npz is read by NumPy; download=False never imports Keras."""
    import subprocess
    import sys

    cache = tmp_path / "datasets" / "mnist.npz"
    cache.parent.mkdir()
    z = np.zeros
    np.savez(cache, x_train=z((3, 28, 28), np.uint8), y_train=z(3, np.uint8), x_test=z((2, 28, 28), np.uint8), y_test=z(2, np.uint8))
    code = (
        "import sys; from core.data import find_mnist, load_mnist; d = load_mnist(download=False);"
        "print(d[0][0].shape, d[1][1].shape, 'keras' in sys.modules);"
        "import os; os.remove(os.environ['KERAS_HOME'] + '/datasets/mnist.npz'); print(find_mnist(download=False))"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "MNIST_DIR"} | {"KERAS_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=__import__("pathlib").Path(__file__).parent.parent)
    assert out.stdout.split("\n")[:2] == ["(3, 28, 28) (2,) False", "None"], out.stderr
