"""MNIST loading, validation split and scaling: the one place where data gets its shape.

Raw arrays are exactly what ``keras.datasets.mnist.load_data()`` returns:

    x_train uint8 (60000, 28, 28)   y_train uint8 (60000,)
    x_test  uint8 (10000, 28, 28)   y_test  uint8 (10000,)

Models take images as float32 (n, 28, 28) in [0, 1] (see ``scale``) and labels
as integers 0-9. Where the files come from, first found wins:

1. ``data_dir`` (``--data-dir`` on the command line), else the ``MNIST_DIR``
   environment variable: a folder of the four IDX files, gzipped or not;
2. the copy committed with the project, ``data/mnist/`` (found from this file,
   so from any working directory), read with NumPy alone, no network;
3. Keras's cache (``$KERAS_HOME/datasets/mnist.npz``), then its download.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "MNIST_DIR"
COMMITTED_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"  # shipped with the repository
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
VALIDATION_SIZE = 5000  # the last 5,000 training images; never trained on


class DataError(Exception):
    """MNIST could not be loaded; the message says which file and why."""


@dataclass(frozen=True)
class Split:
    """Images as float32 (n, 28, 28) in [0, 1] and labels as uint8 (n,)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def how_to_point() -> str:
    names = ", ".join(f"{n}[.gz]" for n in FILES.values())
    return (
        f"The repository ships them in data/mnist/ (git checkout -- data/mnist restores that copy). "
        f"Or put the four MNIST IDX files ({names}) in a folder and point the project at it: "
        f"set {ENV_VAR}=/path/to/folder, or pass --data-dir /path/to/folder."
    )


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: {stem}[.gz] is missing. {how_to_point()}")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one IDX file (gzipped or not) into a uint8 array, checking header and length."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip raises these on truncated or corrupt streams
        raise DataError(f"{path}: cannot be read ({e}); the file is corrupt or truncated.") from e
    if len(raw) < 8:
        raise DataError(f"{path}: only {len(raw)} bytes, too short for an IDX header.")
    found, = struct.unpack(">I", raw[:4])
    if found != magic:
        raise DataError(f"{path}: wrong magic number 0x{found:08x}, expected 0x{magic:08x}.")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: header truncated.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: truncated or padded: header says {shape} = {expected} bytes of data, "
            f"file has {len(raw) - header}."
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _load_folder(folder: Path):
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} does not exist. {how_to_point()}")
    arrays = {}
    for key, stem in FILES.items():
        path = _find(folder, stem)
        arrays[key] = read_idx(path, IMAGE_MAGIC if key.startswith("x") else LABEL_MAGIC)
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.shape[1:] != (28, 28):
            raise DataError(f"{folder / FILES['x_' + part]}: images are {x.shape[1:]}, expected 28x28.")
        if len(x) != len(y):
            raise DataError(
                f"{folder}: {part} set has {len(x)} images but {len(y)} labels "
                f"({FILES['x_' + part]} and {FILES['y_' + part]} disagree)."
            )
        if len(y) and y.max() > 9:
            raise DataError(f"{folder / FILES['y_' + part]}: label {int(y.max())} is outside 0-9.")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def keras_cache() -> Path:
    """Where ``keras.datasets.mnist.load_data()`` keeps its download."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"


def _committed() -> bool:
    """Whether the committed copy is all there (a checkout without it, or an installed wheel, falls through)."""
    return all(any((COMMITTED_DIR / (stem + ext)).is_file() for ext in (".gz", "")) for stem in FILES.values())


def load_mnist(data_dir: str | os.PathLike | None = None, download: bool = True):
    """Return ``(x_train, y_train), (x_test, y_test)`` as uint8, like Keras's loader.

    ``download=False`` never imports Keras: it reads only a folder, the committed copy
    or Keras's cached file.
    """
    folder = data_dir or os.environ.get(ENV_VAR)
    if folder:
        return _load_folder(Path(folder).expanduser())
    if _committed():  # a damaged committed copy raises rather than silently downloading another
        return _load_folder(COMMITTED_DIR)
    cache = keras_cache()
    if cache.is_file():  # read with NumPy: no TensorFlow start-up just to open a file
        try:
            with np.load(cache, allow_pickle=False) as f:
                return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise DataError(f"{cache}: Keras's cached MNIST is corrupt ({e}); delete it or {how_to_point()}") from e
    if not download:
        raise DataError(f"No MNIST data found. {how_to_point()}")
    try:  # downloads to the cache above
        from keras.datasets import mnist

        return mnist.load_data()
    except Exception as e:  # no network: say how to fix it
        raise DataError(f"No MNIST data found and the Keras download failed ({e}). {how_to_point()}") from e


def find_mnist(data_dir=None, download: bool = True):
    """Like ``load_mnist`` but returns None instead of raising when nothing can be found."""
    try:
        return load_mnist(data_dir, download)
    except DataError:
        return None


def scale(x: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1], same shape."""
    return (np.asarray(x, np.float32) / 255.0).astype(np.float32, copy=False)


def splits(data, subset: int | None = None, seed: int = 0) -> tuple[Split, Split, Split]:
    """Scaled train / validation / test splits.

    Validation is always the last ``VALIDATION_SIZE`` training images, so it is the same
    for every model and run. ``subset`` keeps a seeded random N of the remaining training
    images (and a proportional slice of validation) for quick runs; test is always whole.
    """
    (x_train, y_train), (x_test, y_test) = data
    n_val = min(VALIDATION_SIZE, len(x_train) // 12)
    x_tr, y_tr = x_train[:-n_val], y_train[:-n_val]
    x_val, y_val = x_train[-n_val:], y_train[-n_val:]
    if subset is not None and subset < len(x_tr):
        pick = np.sort(np.random.default_rng(seed).choice(len(x_tr), subset, replace=False))
        x_tr, y_tr = x_tr[pick], y_tr[pick]
        n_keep = max(500, min(n_val, subset // 5))
        x_val, y_val = x_val[:n_keep], y_val[:n_keep]
    return (
        Split(scale(x_tr), y_tr.astype(np.uint8)),
        Split(scale(x_val), y_val.astype(np.uint8)),
        Split(scale(x_test), y_test.astype(np.uint8)),
    )


def checksum(data) -> str:
    """SHA-256 over all four arrays: ties artifacts to the exact data they came from."""
    h = hashlib.sha256()
    for part in data:
        for a in part:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
