"""What every page shares: cached artifact readers, cached models, model colours and names,
the missing-artifact message, digit images and the accuracy table.

Readers never raise anything but ``ArtifactError``: a missing, corrupt or oddly shaped file
becomes one message naming the file and the command that recreates it. Importing this
module does not import TensorFlow; only ``models()`` does (the Draw page calls it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run dashboard/Home.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from core import MODELS, TITLES
from core import artifacts as art
from core.artifacts import ArtifactError

MODEL_NAMES: list[str] = list(MODELS)
# Okabe-Ito colours: colour-blind safe and readable on light and dark backgrounds.
COLORS = {"numpy_mlp": "#E69F00", "keras_mlp": "#56B4E9", "lenet": "#009E73"}
SHORT = {"numpy_mlp": "NumPy ANN", "keras_mlp": "Keras ANN", "lenet": "LeNet-5"}
# Test accuracy reported in the original write-ups the three models reproduce.
WRITEUP = {"numpy_mlp": 0.95, "keras_mlp": 0.9766, "lenet": 0.9824}
RETRAIN = art.RETRAIN
QUICK_RUN = f"{RETRAIN} --subset 2000 --epochs 2"

_FILES = {
    "manifest": art.MANIFEST,
    "sample": art.SAMPLE,
    "metrics": "metrics.json",
    "history": "history.json",
    "settings": "settings.json",
    "predictions": "predictions.npz",
    "misclassified": "misclassified.npz",
}
_READERS = {
    "manifest": art.load_manifest,
    "sample": art.load_sample,
    "metrics": art.load_metrics,
    "history": art.load_history,
    "settings": art.load_settings,
    "predictions": art.load_predictions,
    "misclassified": art.load_misclassified,
}


def retrain_command(name: str | None = None) -> str:
    return f"{RETRAIN} --models {name}" if name else RETRAIN


def artifact_path(kind: str, name: str | None = None) -> Path:
    folder = art.artifacts_dir()
    return folder / name / _FILES[kind] if name else folder / _FILES[kind]


def _stamp(path: Path) -> int | None:
    """Part of every cache key: a retrained file is read again, an unchanged one never."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


# --- validation: a file that parses but has the wrong shape must not reach a page -------------
def _check(ok: bool, why: str) -> None:
    if not ok:
        raise ValueError(why)


def _validate(kind: str, data):
    if kind == "metrics":
        _check(isinstance(data, dict), "not a JSON object")
        for key in ("test_accuracy", "errors", "test_size", "params", "inference_ms_per_image", "train_seconds"):
            _check(isinstance(data.get(key), (int, float)), f"'{key}' is missing or not a number")
        _check(np.shape(data.get("confusion")) == (10, 10), "'confusion' is not a 10x10 matrix")
        _check(np.shape(data.get("per_class_accuracy")) == (10,), "'per_class_accuracy' does not have 10 values")
    elif kind == "history":
        _check(isinstance(data, list) and len(data) > 0, "no epochs recorded")
        df = pd.DataFrame(data)
        need = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
        _check(need <= set(df.columns), f"epochs lack {', '.join(sorted(need - set(df.columns)))}")
        _check(all(pd.api.types.is_numeric_dtype(df[c]) for c in need), "non-numeric values")
    elif kind == "settings":
        _check(isinstance(data, dict) and isinstance(data.get("settings"), dict), "no 'settings' object")
    elif kind == "predictions":
        n = len(data["label"])
        _check(data["probs"].shape == (n, 10) and data["pred"].shape == (n,), "arrays of mismatched shapes")
    elif kind == "misclassified":
        k = len(data["index"])
        _check(data["image"].shape == (k, 28, 28), "images are not 28x28")
        _check(data["probs"].shape == (k, 10) and len(data["label"]) == k == len(data["pred"]),
               "arrays of mismatched shapes")
    elif kind == "sample":
        n = len(data["labels"])
        _check(data["images"].shape == (n, 28, 28), "images are not 28x28")
        _check(data["class_means"].shape == (10, 28, 28), "class means are not 10 images of 28x28")
        _check(data["train_counts"].shape == (10,) == data["test_counts"].shape, "class counts do not have 10 values")
    return data


@st.cache_data(show_spinner=False, max_entries=64)
def _cached(kind: str, name: str | None, folder: str, stamp: int | None):
    reader = _READERS[kind]
    data = reader(name, folder) if name else reader(folder)
    try:
        return _validate(kind, data)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        path = Path(folder) / name / _FILES[kind] if name else Path(folder) / _FILES[kind]
        raise ArtifactError(f"{path} is corrupt ({e}). Recreate it with: {retrain_command(name)}") from None


def load(kind: str, name: str | None = None):
    """One artifact (``kind`` as in ``core.artifacts``), read once per version of the file.

    Raises ``ArtifactError`` only, with a message naming the file and the command that recreates it.
    """
    folder = art.artifacts_dir()
    return _cached(kind, name, str(folder), _stamp(artifact_path(kind, name)))


def show_artifact_error(error: ArtifactError | str) -> None:
    """The one way a page says an artifact is unusable: what is wrong and the command that fixes it."""
    message = str(error)
    if RETRAIN not in message:
        message += f" Recreate it with: {RETRAIN}"
    st.error(message, icon=":material/error:")


def try_load(kind: str, name: str | None = None):
    """The artifact, or None after showing why it cannot be used."""
    try:
        return load(kind, name)
    except ArtifactError as e:
        show_artifact_error(e)
        return None


def load_per_model(kind: str) -> dict:
    """{model: artifact} for the models whose file is usable; an error is shown for each other one."""
    out = {}
    for name in MODEL_NAMES:
        value = try_load(kind, name)
        if value is not None:
            out[name] = value
    return out


def require_artifacts() -> None:
    """Stop the page with one clear message when there is no artifacts folder at all."""
    folder = art.artifacts_dir()
    if not folder.is_dir():
        st.error(
            f"There is no artifacts folder at {folder}, so there is nothing to show yet. "
            f"Create it with: {RETRAIN}",
            icon=":material/error:",
        )
        st.caption(f"For a quick (less accurate) demo set: `{QUICK_RUN}` takes well under a minute.")
        st.stop()


# --- models: only the Draw page calls this, as it imports TensorFlow --------------------------
@st.cache_resource(show_spinner=False, max_entries=8)
def _model(name: str, folder: str, stamp: tuple):
    from core import load_model

    return load_model(name, folder)


def models() -> tuple[dict, dict[str, str]]:
    """({name: model} for every usable model, {name: message} for the others)."""
    folder = art.artifacts_dir()
    loaded, problems = {}, {}
    for name in MODEL_NAMES:
        stamp = tuple(_stamp(p) for p in sorted((folder / name).glob("*"))) if (folder / name).is_dir() else ()
        try:
            loaded[name] = _model(name, str(folder), stamp)
        except ArtifactError as e:
            message = str(e)
            if RETRAIN not in message:
                message += f" Recreate it with: {retrain_command(name)}"
            problems[name] = message
    return loaded, problems


# --- the full dataset, when it is here ----------------------------------------------------------
@st.cache_resource(show_spinner="Reading the MNIST dataset…", max_entries=2)
def _full_data(mnist_dir: str | None, stamp):
    """Found the way ``core.data`` finds it, without its download (and so without importing Keras)."""
    from core.data import find_mnist

    return find_mnist(mnist_dir, download=False)


def full_data():
    """``((x_train, y_train), (x_test, y_test))`` as uint8, or None when the dataset is not here."""
    from core.data import keras_cache

    mnist_dir = os.environ.get("MNIST_DIR") or None
    return _full_data(mnist_dir, None if mnist_dir else _stamp(keras_cache()))


# --- pictures -------------------------------------------------------------------------------------
def to_uint8(image) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.round(np.clip(a.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    return a


def digit_image(image, size: int = 112) -> Image.Image:
    """A 28x28 digit (uint8, or float in [0, 1]) scaled up with hard pixel edges."""
    return Image.fromarray(to_uint8(image), "L").resize((size, size), Image.Resampling.NEAREST)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def montage(images, ncols: int, scale: int = 3, gap: int = 4, row_labels=None, col_labels=None) -> Image.Image:
    """Digits on one black sheet, crisp, with optional labels: reads the same in light and dark themes."""
    images = [to_uint8(im) for im in images]
    nrows = -(-len(images) // ncols)
    cell = 28 * scale
    left = cell // 2 + gap if row_labels is not None else 0
    top = cell // 3 + gap if col_labels is not None else 0
    w = left + ncols * cell + (ncols + 1) * gap
    h = top + nrows * cell + (nrows + 1) * gap
    sheet = Image.new("L", (w, h), 0)
    for i, im in enumerate(images):
        r, c = divmod(i, ncols)
        sheet.paste(Image.fromarray(im, "L").resize((cell, cell), Image.Resampling.NEAREST),
                    (left + gap + c * (cell + gap), top + gap + r * (cell + gap)))
    draw = ImageDraw.Draw(sheet)
    font = _font(max(12, cell // 3))
    for r, label in enumerate(row_labels or []):
        draw.text((left // 2, top + gap + r * (cell + gap) + cell // 2), str(label), fill=170, font=font, anchor="mm")
    for c, label in enumerate(col_labels or []):
        draw.text((left + gap + c * (cell + gap) + cell // 2, top // 2 + gap // 2), str(label), fill=170, font=font,
                  anchor="mm")
    return sheet


# --- numbers every page agrees on -----------------------------------------------------------------
def accuracy_table(metrics: dict[str, dict], session=()) -> pd.DataFrame:
    """One row per model: the figures the Home and Results pages show.

    ``session``: this session's own models (``session_models.all().values()``), one row each after the
    committed ones, labelled "(this session)"; they have no write-up, so those two cells are NaN (shown "—").
    """
    rows = []
    for name, m in metrics.items():
        acc = 100 * m["test_accuracy"]
        rows.append({
            "Model": TITLES[name],
            "Test accuracy": acc,
            "Errors": int(m["errors"]),
            "Parameters": int(m["params"]),
            "Training time": float(m["train_seconds"]),
            "Inference per image": 1000 * float(m["inference_ms_per_image"]),  # µs
            "Write-up": 100 * WRITEUP[name],
            "Difference": acc - 100 * WRITEUP[name],
        })
    for entry in session:
        m = entry.metrics or {}
        try:
            rows.append({
                "Model": session_title(entry),
                "Test accuracy": 100 * float(m["test_accuracy"]),
                "Errors": int(m["errors"]),
                "Parameters": int(m["params"]),
                "Training time": float(m["train_seconds"]),
                "Inference per image": 1000 * float(m["inference_ms_per_image"]),
                "Write-up": np.nan,
                "Difference": np.nan,
            })
        except (KeyError, TypeError, ValueError):  # an incomplete entry is left out, never a traceback
            continue
    return pd.DataFrame(rows)


def session_title(entry) -> str:
    """How a model trained in this session is named wherever it sits beside the committed ones."""
    return f"{entry.label} (this session)"


def show_accuracy_table(metrics: dict[str, dict], session=()) -> pd.DataFrame:
    df = accuracy_table(metrics, session)
    sizes = [m.get("test_size") for m in [*metrics.values(), *(e.metrics or {} for e in session)]]
    test_size = max((int(s) for s in sizes if isinstance(s, (int, float))), default=10_000)
    minutes = df["Training time"].max() >= 120
    shown = df.assign(**{"Training time": df["Training time"] / 60}) if minutes else df
    writeup = {"Write-up": ("Write-up", "%.2f%%", "{:.2f}%", "Test accuracy reported in the original write-up"),
               "Difference": ("vs write-up", "%+.2f pp", "{:+.2f} pp",
                              "Percentage points above (+) or below (-) the write-up")}
    if len(df) > len(metrics):  # this session's models have no write-up: those cells read "—", as text
        shown = shown.assign(**{c: [f.format(v) if pd.notna(v) else "—" for v in shown[c]]
                                for c, (_, _, f, _) in writeup.items()})
        writeup_config = {c: st.column_config.TextColumn(label, help=help_, alignment="right")
                          for c, (label, _, _, help_) in writeup.items()}
    else:
        writeup_config = {c: st.column_config.NumberColumn(label, format=fmt, help=help_)
                          for c, (label, fmt, _, help_) in writeup.items()}
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "Model": st.column_config.TextColumn("Model", pinned=True),
            "Test accuracy": st.column_config.NumberColumn("Test accuracy", format="%.2f%%"),
            "Errors": st.column_config.NumberColumn(f"Errors / {test_size:,}", format="localized",
                                                    help="Test digits the model got wrong"),
            "Parameters": st.column_config.NumberColumn("Parameters", format="localized"),
            "Training time": st.column_config.NumberColumn(
                "Training time", format="%.1f min" if minutes else "%.1f s", help="Wall-clock time for all epochs"
            ),
            "Inference per image": st.column_config.NumberColumn(
                "Inference / image", format="%.1f µs", help="Whole test set in one batch, divided by its size"
            ),
            **writeup_config,
        },
    )
    if len(df) > len(metrics):
        st.caption("Rows marked *(this session)* are the models you trained on the Train page: they last until "
                   "you close this tab and have no write-up to compare with.")
    return df


def artifacts_caption() -> None:
    """Where the figures come from: training size, epochs and date, from the manifest and metrics."""
    try:
        manifest = load("manifest")
    except ArtifactError:
        return
    created = str(manifest.get("created", "?"))[:10]
    runs = manifest.get("models") if isinstance(manifest.get("models"), dict) else {}
    subsets = sorted({r.get("subset") for r in runs.values() if isinstance(r, dict) and r.get("subset")})
    if subsets:
        st.warning(
            f"These artifacts come from a quick run on {', '.join(f'{s:,}' for s in subsets)} training images, "
            f"so every figure is well below what the models reach. `{RETRAIN}` trains on the full data.",
            icon=":material/science:",
        )
    else:
        st.caption(f"Trained on the full MNIST training set; artifacts created {created}.")


# --- comparisons built from the saved predictions (pure data, no model code) -----------------------
def same_labels(preds: dict[str, dict]) -> bool:
    labels = [p["label"] for p in preds.values()]
    return all(len(l) == len(labels[0]) and np.array_equal(l, labels[0]) for l in labels)


def agreement_breakdown(preds: dict[str, dict]) -> pd.DataFrame:
    """How the test digits split by which models get them right: one row per outcome, with a count."""
    names = list(preds)
    label = preds[names[0]]["label"]
    right = {n: preds[n]["pred"] == label for n in names}
    all_right = np.logical_and.reduce(list(right.values()))
    all_wrong = ~np.logical_or.reduce(list(right.values()))
    rows = [{"Outcome": f"All {len(names)} right", "Digits": int(all_right.sum()), "kind": "all right", "model": None}]
    if len(names) == 3:
        for n in names:
            others = [o for o in names if o != n]
            only_wrong = ~right[n] & right[others[0]] & right[others[1]]
            rows.append({"Outcome": f"Only {SHORT[n]} wrong", "Digits": int(only_wrong.sum()), "kind": "one wrong",
                         "model": n})
        for n in names:
            others = [o for o in names if o != n]
            only_right = right[n] & ~right[others[0]] & ~right[others[1]]
            rows.append({"Outcome": f"Only {SHORT[n]} right", "Digits": int(only_right.sum()), "kind": "one right",
                         "model": n})
    elif len(names) == 2:
        for n in names:
            other = [o for o in names if o != n][0]
            rows.append({"Outcome": f"Only {SHORT[n]} wrong", "Digits": int((~right[n] & right[other]).sum()),
                         "kind": "one wrong", "model": n})
    stacked = np.stack([preds[n]["pred"] for n in names])
    same_answer = (stacked == stacked[0]).all(0)
    rows.append({"Outcome": f"All {len(names)} wrong, same answer", "Digits": int((all_wrong & same_answer).sum()),
                 "kind": "all wrong", "model": None})
    rows.append({"Outcome": f"All {len(names)} wrong, different answers",
                 "Digits": int((all_wrong & ~same_answer).sum()), "kind": "all wrong", "model": None})
    return pd.DataFrame(rows)


def shared_errors(preds: dict[str, dict]) -> pd.DataFrame:
    """Square table: digits both models get wrong (the diagonal: each model's own errors)."""
    names = list(preds)
    label = preds[names[0]]["label"]
    wrong = {n: preds[n]["pred"] != label for n in names}
    return pd.DataFrame([[int((wrong[a] & wrong[b]).sum()) for b in names] for a in names],
                        index=[SHORT[n] for n in names], columns=[SHORT[n] for n in names])


def top_confusions(metrics: dict[str, dict], k: int = 10) -> pd.DataFrame:
    """The (true, predicted) pairs with the most errors summed over the models, one count column per model."""
    cms = {n: np.asarray(m["confusion"]) for n, m in metrics.items()}
    total = sum(cms.values()).astype(float)
    np.fill_diagonal(total, -1)
    order = np.argsort(total, axis=None)[::-1][:k]
    rows = []
    for flat in order:
        t, p = divmod(int(flat), 10)
        if total[t, p] <= 0:
            break
        rows.append({"True": t, "Predicted": p, **{SHORT[n]: int(cm[t, p]) for n, cm in cms.items()},
                     "Total": int(total[t, p])})
    return pd.DataFrame(rows)


def mistakes(preds: dict[str, dict], wrong: dict[str, dict]) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Every test digit at least one model got wrong: one row per digit with each model's answer.

    Columns: index, label, and per model ``pred_<m>``, ``conf_<m>`` (its probability for its answer),
    ``wrong_<m>``. Also returns {index: uint8 28x28 image}, taken from the misclassified files.
    """
    names = list(preds)
    images: dict[int, np.ndarray] = {}
    for n in names:
        for i, im in zip(wrong[n]["index"], wrong[n]["image"]):
            images.setdefault(int(i), im)
    index = np.array(sorted(images), dtype=np.int64)
    label = preds[names[0]]["label"]
    index = index[index < len(label)]
    df = pd.DataFrame({"index": index, "label": label[index].astype(int)})
    for n in names:
        probs = preds[n]["probs"][index].astype(np.float32)
        pred = preds[n]["pred"][index].astype(int)
        df[f"pred_{n}"] = pred
        df[f"conf_{n}"] = probs[np.arange(len(index)), pred]
        df[f"wrong_{n}"] = pred != df["label"].to_numpy()
    return df, images


def majority_vote(preds: dict[str, dict], metrics: dict[str, dict]) -> np.ndarray:
    """Each test digit's majority answer; where no two models agree, the most accurate model's answer."""
    names = sorted(preds, key=lambda n: -metrics.get(n, {}).get("test_accuracy", 0))
    stacked = np.stack([preds[n]["pred"].astype(np.int64) for n in names])  # best model first
    counts = np.stack([(stacked == d).sum(0) for d in range(10)])  # (10, N)
    vote = counts.argmax(0)
    return np.where(counts.max(0) >= 2, vote, stacked[0])


def probability_chart(name: str, probs, height: int = 230, true_digit: int | None = None, color: str | None = None):
    """The ten probabilities of one model as bars, its answer in the model's colour (or ``color``)."""
    import plotly.graph_objects as go

    probs = np.asarray(probs, dtype=float)
    top = int(probs.argmax())
    ticks = [f"<b>{d} ✓</b>" if d == true_digit else str(d) for d in range(10)]
    fig = go.Figure(go.Bar(
        x=list(range(10)), y=probs,
        marker_color=[(color or COLORS[name]) if d == top else "rgba(127,127,127,0.45)" for d in range(10)],
        text=[(f"{p:.0%}" if p < 0.995 else ">99%") if p >= 0.1 or d == top else "" for d, p in enumerate(probs)],
        textposition="outside",
        cliponaxis=False, constraintext="none", textfont=dict(size=12),
        hovertemplate="digit %{x}: %{y:.2%}<extra></extra>",
    ))
    fig.update_layout(height=height, margin=dict(t=16, b=8, l=8, r=8), showlegend=False, bargap=0.25, title=None,
                      xaxis=dict(title=None, tickmode="array", tickvals=list(range(10)), ticktext=ticks,
                                 fixedrange=True, tickfont=dict(size=13)),
                      yaxis=dict(title=None, range=[0, 1.15], tickformat=".0%", dtick=0.5, fixedrange=True))
    return fig


def heatmap(z, x, y, color: str, text=None, customdata=None, hovertemplate=None):
    """A heatmap from faint grey to ``color`` whose numbers read in light and dark themes.

    Plotly picks heatmap text colours from the cell colour without knowing the page behind a
    translucent cell, so the numbers are separate text traces: white on strong cells, the
    theme's own text colour elsewhere.
    """
    import plotly.graph_objects as go

    z = np.asarray(z, dtype=float)
    text = np.asarray(z if text is None else text, dtype=object)
    fig = go.Figure(go.Heatmap(
        z=z, x=x, y=y, customdata=customdata, hovertemplate=hovertemplate, showscale=False, xgap=1, ygap=1,
        colorscale=[[0, "rgba(127,127,127,0.08)"], [1, color]],
    ))
    top = np.nanmax(z) if np.isfinite(z).any() else 1
    strong = np.nan_to_num(z, nan=0) > 0.55 * top
    for pick, font in ((~strong, {}), (strong, {"color": "white"})):
        rows, cols = np.nonzero(pick & (text != ""))
        fig.add_scatter(x=[x[c] for c in cols], y=[y[r] for r in rows],
                        text=[str(text[r, c]) for r, c in zip(rows, cols)], mode="text", textfont=dict(size=11, **font), hoverinfo="skip", showlegend=False)
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(showgrid=False, zeroline=False)
    return fig
