"""tools.seed_spread: its summary against a slow, obvious reference, and a tiny spread end to end (trained with
core.train's own command, resumed without retraining). The end-to-end tests skip without the handwriting data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import beyond
from tools import seed_spread


def reference(probs, labels, no_digit):
    """The same figures, one digit at a time."""
    seeds, errors, every, ens_errors = [], [], 0, 0
    for p in probs:
        wrong = sum(1 for i, y in enumerate(labels) if no_digit[i] or int(np.argmax(p[i])) != y)
        errors.append(wrong)
        seeds.append(1 - wrong / len(labels))
    for i, y in enumerate(labels):
        if all(no_digit[i] or int(np.argmax(p[i])) != y for p in probs):
            every += 1
        mean = [sum(float(p[i][k]) for p in probs) / len(probs) for k in range(10)]
        if no_digit[i] or mean.index(max(mean)) != y:
            ens_errors += 1
    mean = sum(seeds) / len(seeds)
    sd = (sum((a - mean) ** 2 for a in seeds) / (len(seeds) - 1)) ** 0.5 if len(seeds) > 1 else 0.0
    return seeds, mean, sd, errors, every, 1 - ens_errors / len(labels)


@pytest.mark.parametrize("n_seeds", [1, 2, 5])
def test_summary_matches_a_digit_by_digit_count(n_seeds):
    rng = np.random.default_rng(n_seeds)
    labels = rng.integers(0, 10, 300)
    no_digit = rng.random(300) < 0.05
    # answers near the label, so seeds agree often and the ensemble differs from each seed
    probs = [rng.dirichlet(np.ones(10), 300) + 0.6 * np.eye(10)[labels] * (rng.random((300, 1)) < 0.8)
             for _ in range(n_seeds)]
    r = seed_spread.summarise(probs, labels, no_digit)
    seeds, mean, sd, errors, every, ensemble = reference(probs, labels, no_digit)
    assert r["seeds"] == pytest.approx(seeds)
    assert r["mean"] == pytest.approx(mean) and r["sd"] == pytest.approx(sd)
    assert r["errors"] == errors and r["wrong_at_every_seed"] == every
    assert r["ensemble"] == pytest.approx(ensemble)
    assert r["wrong_at_every_seed"] >= int(no_digit.sum())  # no digit found: wrong for every seed


def test_averaging_can_right_what_each_seed_gets_wrong():
    labels = np.array([0, 0])
    a = np.array([[0.45, 0.55] + [0] * 8, [0.9, 0.1] + [0] * 8])
    b = np.array([[0.9, 0.1] + [0] * 8, [0.45, 0.55] + [0] * 8])
    r = seed_spread.summarise([a, b], labels)
    assert r["seeds"] == [0.5, 0.5] and r["ensemble"] == 1.0 and r["wrong_at_every_seed"] == 0


@pytest.mark.parametrize("argv, message", [(["--seeds", "1"], "two seeds"), (["--jobs", "0"], "--jobs")])
def test_bad_arguments_are_refused_with_a_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        seed_spread.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_missing_handwriting_is_a_clear_error(tmp_path, capsys):
    assert seed_spread.main(["--handwriting", str(tmp_path / "none"), "--work", str(tmp_path / "w")]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # nothing trained


@pytest.fixture(scope="module")
def handwriting():
    try:
        return beyond.find_data()
    except beyond.DataMissing as e:
        pytest.skip(f"the handwriting data is not here: {e}")


def test_training_flags_reach_every_run():
    """A recipe with one training setting changed: each seed's core.train gets the flag, read back as core.train
    reads it; none given, none passed."""
    from core.train import parse_args

    cmd = seed_spread.train_command("lenet", 3, Path("w"), training={"gentle_share": 0.0, "sam": 0.05})
    assert parse_args(cmd[cmd.index("--models"):]).training == {"gentle_share": 0.0, "sam": 0.05}
    assert "--sam" not in seed_spread.train_command("lenet", 3, Path("w"))
    with pytest.raises(SystemExit) as e:
        seed_spread.main(["--sam", "3"])
    assert e.value.code == 2


def test_a_tiny_spread_trains_each_seed_once_and_reports_every_set(handwriting, tmp_path, capsys):
    argv = ["--models", "numpy_mlp", "--seeds", "2", "--epochs", "1", "--subset", "1000", "--limit", "20",
            "--work", str(tmp_path)]
    assert seed_spread.main(argv) == 0
    first = capsys.readouterr().out
    rows = [line for line in first.splitlines() if line.startswith("| `numpy_mlp`")]
    assert [r.split(" | ")[1].split(" (")[0] for r in rows] == ["mnist"] + [c.key for c in beyond.CONDITIONS]
    assert all(len(r.split(" | ")[2].split(" / ")) == 2 for r in rows)  # one accuracy per seed
    weights = [tmp_path / f"numpy_mlp-{s}" / "numpy_mlp" / "weights.npz" for s in (0, 1)]
    stamps = [w.stat().st_mtime_ns for w in weights]
    assert seed_spread.main(argv) == 0  # resumed: the runs are reused, not retrained
    assert [w.stat().st_mtime_ns for w in weights] == stamps
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")] == \
        [line for line in first.splitlines() if line.startswith("|")]
    # Read as the Draw page reads: the same runs, MNIST read again, each seed as its tta_proba says.
    assert seed_spread.main([*argv, "--tta"]) == 0
    assert [w.stat().st_mtime_ns for w in weights] == stamps
    mnist = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| `numpy_mlp` | mnist"))
    from core import artifacts
    from core.data import load_mnist, scale

    _, (x, y) = load_mnist()
    by_hand = [(artifacts.load_model("numpy_mlp", tmp_path / f"numpy_mlp-{s}").tta_proba(scale(x)).argmax(1) == y).mean()
               for s in (0, 1)]
    assert mnist.split(" | ")[2] == " / ".join(f"{100 * a:.2f}" for a in by_hand)


def test_a_run_that_fails_stops_the_spread_with_its_log(handwriting, tmp_path, capsys):
    argv = ["--models", "numpy_mlp", "--seeds", "2", "--epochs", "1", "--subset", "1000",
            "--data-dir", str(tmp_path / "no-mnist"), "--work", str(tmp_path / "w")]
    assert seed_spread.main(argv) == 1
    err = capsys.readouterr().err
    assert "numpy_mlp at seed" in err and "failed" in err
