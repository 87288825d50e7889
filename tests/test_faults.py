"""Faults, with nothing lost: killed training, damaged artifacts, damaged data.

- ``python -m core.train`` killed by SIGTERM or SIGKILL at seeded random points (set
  FAULT_SEED to draw others) leaves the previous artifacts byte-for-byte as they were:
  they load and predict as before. The swap at the end of a run cannot be cut in half.
- Every artifact file, garbled, truncated or removed in turn: the reader for it raises
  ArtifactError naming that file, and the other models' files still read.
- Every MNIST IDX file truncated or corrupted: DataError naming the file, also from the CLI.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core import MODELS, artifacts, load_model, load_models
from core.artifacts import ArtifactError
from core.data import COMMITTED_DIR, FILES, DataError, load_mnist

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("FAULT_SEED", "0"))


def snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def predictions(folder: Path) -> dict[str, np.ndarray]:
    x = artifacts.read("sample", folder=folder)["images"][::25].astype(np.float32) / 255
    return {name: m.predict_proba(x) for name, m in load_models(folder).items()}


@pytest.fixture(scope="module")
def reference(tiny_artifacts):
    return snapshot(tiny_artifacts), predictions(tiny_artifacts)


@pytest.fixture
def art(tiny_artifacts, tmp_path):
    """A private copy of a good artifacts folder."""
    out = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, out)
    return out


# --- training killed mid-run --------------------------------------------------------------------
# Where to kill: after the line starting with `marker` appears, wait a seeded random delay.
# The run trains the NumPy MLP only (the staging is the same for every model; this keeps it fast):
# after "data:" it trains (~0.3 s), evaluates, imports TensorFlow for the manifest's versions
# (~2 s), writes the sample and the manifest and swaps the folders in.
KILL_POINTS = {"training": ("data:", 0.5), "writing": ("  test accuracy", 2.5)}
KILL_SUBSET = 1200  # not the 1,000 of the artifacts it starts from, so a committed run is recognised


def _train_and_kill(out: Path, sig: int, marker: str, delay: float):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.train", "--models", "numpy_mlp", "--subset", str(KILL_SUBSET), "--epochs", "1",
         "--seeds", "1", "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for line in proc.stdout:
            if line.startswith(marker):
                break
        else:
            pytest.fail(f"training ended before printing {marker!r}: {proc.stderr.read()[-2000:]}")
        time.sleep(delay)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout, stderr


def test_an_interrupt_that_cleanup_code_masks_still_ends_as_an_interrupt(monkeypatch, capsys):
    # Seen in CI: SIGTERM inside np.savez_compressed; zipfile's close then raised a ValueError of its
    # own, which replaced the KeyboardInterrupt, and the run ended with status 1 and a traceback.
    import core.train as command

    monkeypatch.setattr(command.signal, "signal", lambda *args: None)  # leave pytest's own handlers alone

    def interrupted_while_writing(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        finally:
            raise ValueError("Can't close the ZIP file while there is an open writing handle on it.")

    monkeypatch.setattr(command, "train", interrupted_while_writing)
    assert command.main(["--models", "numpy_mlp"]) == 130
    assert "previous artifacts are untouched" in capsys.readouterr().err

    def a_real_bug(*args, **kwargs):
        raise ValueError("not an interrupt")

    monkeypatch.setattr(command, "train", a_real_bug)
    with pytest.raises(ValueError, match="not an interrupt"):  # anything else still shows its traceback
        command.main(["--models", "numpy_mlp"])


@pytest.mark.parametrize("where", list(KILL_POINTS))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_training_keeps_previous_artifacts(art, reference, sig, where):
    files_before, probs_before = reference
    marker, max_delay = KILL_POINTS[where]
    delay = random.Random(f"{SEED}-{sig}-{where}").uniform(0, max_delay)
    code, stdout, stderr = _train_and_kill(art, sig, marker, delay)
    print(f"{sig!r} {delay:.3f}s after {marker!r}: exit {code}")

    if code in (0, -signal.SIGTERM):  # finished first, or SIGTERM came during interpreter shutdown
        assert "artifacts written" in stdout, (code, stderr[-2000:])
    elif sig == signal.SIGTERM:
        # 130, or death by SIGINT (a shell shows 130 too): CPython exits that way when the
        # KeyboardInterrupt passed through C code running Python (TensorFlow's import), even if caught.
        assert code in (130, -signal.SIGINT), stderr
        assert "previous artifacts are untouched" in stderr
        assert not list(art.parent.glob("artifacts.tmp-*")), "SIGTERM must discard the staging folder"
    else:
        assert code == -signal.SIGKILL
    assert not list(art.parent.glob("artifacts.old-*"))
    files_after = snapshot(art)
    if files_after == files_before:
        after = predictions(art)
        for name in MODELS:
            np.testing.assert_allclose(after[name], probs_before[name], atol=1e-6)
        return
    # Otherwise the signal came after the swap, the run's commit point: then the folder must be the
    # complete new run, the NumPy MLP's files all new and every other file untouched, never a mix.
    assert set(files_after) == set(files_before), f"killed at {where} +{delay:.3f}s (exit {code}): files differ"
    manifest = artifacts.read("manifest", folder=art)
    assert manifest["models"]["numpy_mlp"]["subset"] == KILL_SUBSET
    assert artifacts.read("metrics", "numpy_mlp", art)["train_size"] == KILL_SUBSET
    for rel_path, digest in files_before.items():
        if rel_path.startswith(("keras_mlp/", "lenet/")):
            assert files_after[rel_path] == digest, rel_path
        elif rel_path.startswith("numpy_mlp/") and not rel_path.endswith("settings.json"):  # same settings
            assert files_after[rel_path] != digest, rel_path
    load_models(art)


def test_interrupt_during_swap_cannot_cut_it_in_half(art, monkeypatch):
    """SIGTERM arriving between staging's two renames (train turns it into KeyboardInterrupt) must not
    leave the folder missing: the swap is the commit point, so the run completes."""
    def terminate(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    real_rename = Path.rename
    sent = []

    def rename_then_sigterm(self, target):
        result = real_rename(self, target)
        if self == art:  # the first of the two renames: the old folder has just moved aside
            os.kill(os.getpid(), signal.SIGTERM)
            sent.append(True)
        return result

    monkeypatch.setattr(Path, "rename", rename_then_sigterm)
    try:
        with artifacts.staging(art) as stage:
            (stage / "marker").write_text("new")
        time.sleep(0.05)  # any pending Python-level handler would run here
    except KeyboardInterrupt:
        pytest.fail(f"the interrupt cut the swap in half: {art} exists: {art.exists()}")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sent
    assert (art / "marker").read_text() == "new"
    assert not list(art.parent.glob("artifacts.old-*")) and not list(art.parent.glob("artifacts.tmp-*"))
    artifacts.read("manifest", folder=art)


def test_swap_cut_by_sigkill_is_restored_by_next_run(art):
    """SIGKILL between the renames leaves only artifacts.old-<pid>; the next run puts it back first."""
    files_before = snapshot(art)
    art.rename(art.parent / "artifacts.old-12345")
    with pytest.raises(RuntimeError), artifacts.staging(art):
        raise RuntimeError("the next run fails too")
    assert snapshot(art) == files_before
    load_models(art)


# --- damaged artifact files ---------------------------------------------------------------------
def _readers(rel: str):
    """The core readers that must refuse ``rel`` when it is damaged: (description, call(folder))."""
    if rel == artifacts.MANIFEST:
        return [("read manifest", lambda p: artifacts.read("manifest", folder=p))]
    if rel == artifacts.SAMPLE:
        return [("read sample", lambda p: artifacts.read("sample", folder=p))]
    model, name = rel.split("/")
    kind = next((k for k, f in artifacts.FILES.items() if f.filename == name), None)
    readers = [("load_model", lambda p: load_model(model, p))] if name in ("settings.json", *WEIGHTS.values()) else []
    if kind is not None:
        readers.append((f"read {kind}", lambda p: artifacts.read(kind, model, p)))
    return readers


WEIGHTS = {"numpy_mlp": "weights.npz", "keras_mlp": "model.keras", "lenet": "model.keras"}
PER_MODEL = ("settings.json", "history.json", "metrics.json", "predictions.npz", "misclassified.npz", "seeds.npz")
ARTIFACT_FILES = [artifacts.MANIFEST, artifacts.SAMPLE] + [
    f"{m}/{f}" for m in MODELS for f in (*PER_MODEL, WEIGHTS[m])
]


def damage(path: Path, how: str) -> None:
    if how == "removed":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        rng = np.random.default_rng(0)
        path.write_bytes(rng.integers(0, 256, path.stat().st_size, dtype=np.uint8).tobytes())
    elif how == "bitflip":  # damage in the middle, header intact: CRC or parse errors
        raw = bytearray(path.read_bytes())
        mid = len(raw) // 2
        raw[mid : mid + 64] = bytes(b ^ 0xFF for b in raw[mid : mid + 64])
        path.write_bytes(bytes(raw))
    else:
        raise ValueError(how)


def test_artifact_file_list_is_complete(tiny_artifacts):
    """Every file training writes is covered below (a new artifact file must be added here)."""
    assert sorted(snapshot(tiny_artifacts)) == sorted(ARTIFACT_FILES)


# A flipped byte in JSON is either a parse error (as garbage) or a changed value: binary files only.
DAMAGE = [(rel, how) for rel in ARTIFACT_FILES for how in ("removed", "truncated", "garbage", "bitflip")
          if not (how == "bitflip" and rel.endswith(".json"))]


@pytest.mark.parametrize("rel, how", DAMAGE, ids=[f"{r}-{h}" for r, h in DAMAGE])
def test_damaged_artifact_is_named(art, rel, how):
    path = art / rel
    damage(path, how)
    for what, read in _readers(rel):
        with pytest.raises(ArtifactError) as e:
            read(art)
        assert str(path) in str(e.value), f"{what}: {e.value}"
    # The rest still reads: the other models' files, and status() names only the affected model.
    model = rel.split("/")[0] if "/" in rel else None
    if model:
        state = artifacts.status(art)
        for other in MODELS:
            if other != model:
                assert state[other] is None, state[other]
                artifacts.read("metrics", other, art)
        if rel.split("/")[1] in ("settings.json", "history.json", "metrics.json"):
            assert str(path) in state[model]
    if rel != artifacts.MANIFEST:
        artifacts.read("manifest", folder=art)
    if model != "numpy_mlp":
        assert load_model("numpy_mlp", art).predict_proba(np.zeros((1, 28, 28), np.float32)).shape == (1, 10)


CLI_CASES = [  # every file load_model reads, each model, removed or damaged
    ("numpy_mlp/weights.npz", "removed"), ("numpy_mlp/settings.json", "truncated"),
    ("numpy_mlp/history.json", "garbage"), ("keras_mlp/model.keras", "garbage"),
    ("keras_mlp/settings.json", "removed"), ("keras_mlp/history.json", "truncated"),
    ("lenet/model.keras", "truncated"), ("lenet/model.keras", "removed"), ("lenet/settings.json", "garbage"),
]


@pytest.mark.parametrize("rel, how", CLI_CASES, ids=[f"{r}-{h}" for r, h in CLI_CASES])
def test_predict_cli_names_the_bad_artifact(art, rel, how, tmp_path, capsys):
    from PIL import Image

    from core.predict import main

    image = tmp_path / "digit.png"
    Image.fromarray(artifacts.read("sample", folder=art)["images"][0]).save(image)
    damage(art / rel, how)
    code = main([str(image), "--artifacts", str(art)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert str(art / rel) in err and "Traceback" not in err, err


# --- damaged MNIST files --------------------------------------------------------------------------
def _damage_idx(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "truncated_gzip":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "corrupt_gzip":  # header intact, deflate stream damaged
        damage(path, "bitflip")
    elif how == "garbage":
        damage(path, "garbage")
    elif how == "truncated_data":  # a valid gzip of an IDX file that lost its last 100 bytes
        path.write_bytes(gzip.compress(gzip.decompress(raw)[:-100], compresslevel=1))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how", ["truncated_gzip", "corrupt_gzip", "garbage", "truncated_data", "empty"])
@pytest.mark.parametrize("stem", list(FILES.values()))
def test_damaged_data_file_is_named(tmp_path, mnist, stem, how):
    src = COMMITTED_DIR  # the gzipped files that ship with the repository
    for other in FILES.values():
        name = other + ".gz"
        if other == stem:
            shutil.copyfile(src / name, tmp_path / name)
        else:
            (tmp_path / name).symlink_to(src / name)
    path = tmp_path / (stem + ".gz")
    _damage_idx(path, how)
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path)
    assert str(path) in str(e.value)


def test_training_cli_names_the_bad_data_file(tmp_path, mnist):
    src = COMMITTED_DIR  # the gzipped files that ship with the repository
    for stem in FILES.values():
        (tmp_path / (stem + ".gz")).symlink_to(src / (stem + ".gz"))
    bad = tmp_path / (FILES["y_test"] + ".gz")
    bad.unlink()
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00\x00\x27\x10" + bytes(5000)))  # 10,000 labels promised, 5,000 given
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "core.train", "--subset", "1000", "--data-dir", str(tmp_path),
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert str(bad) in r.stderr and "truncated" in r.stderr
    assert not out.exists()
