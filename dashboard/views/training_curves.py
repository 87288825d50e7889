"""Training: loss and accuracy per epoch (training and validation), overlaid for comparison and per
model; the time each epoch took; the learning-rate schedule; and the settings each model was trained with.
"""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.settings import TrainSettings, from_dict
from dashboard import entries, ui
from dashboard.charts import CURVES, epoch_axis, learning_curves

st.title("Training")
st.markdown(
    "Each model saw the training digits once per epoch, in a new random order and with random small "
    "distortions, and was then scored on 5,000 validation digits it never trains on. Solid lines are the "
    "training set, dashed lines validation. Training figures are averages over an epoch taken while the "
    "weights were still changing (and on distorted digits, with dropout for LeNet), so they can sit below "
    "the validation figures."
)
ui.require_artifacts()
shown = entries.listed("history")
if not shown:
    st.stop()
histories = {e.key: pd.DataFrame(e.history) for e in shown}
EPOCHS = max(len(df) for df in histories.values())


# --- all models on one chart ------------------------------------------------------------------------
st.header("Compared", divider="gray")
c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
which = c1.segmented_control("Curves", ["Training and validation", "Validation only"],
                             default="Training and validation", key="which", required=True)
log_loss = c2.toggle("Log scale for loss", value=True, help="Late epochs change the loss by little; a log "
                     "scale keeps those changes visible.")
show_train = which == "Training and validation"
for col, (what, (label, _, hint)) in zip(st.columns(2), CURVES.items()):
    series = [(e.title, e.color, e.history) for e in shown]
    col.plotly_chart(learning_curves(series, what, f"{label.split(' (')[0]} per epoch ({hint.lower()})",
                                     show_train=show_train, log=log_loss and what == "loss",
                                     zoom=what == "accuracy"), width="stretch")


def train_settings(settings: dict) -> TrainSettings | None:
    """A run's training settings as the class has them, or None where they cannot be read (shown as saved below)."""
    try:
        return from_dict(TrainSettings, settings.get("train"))
    except (TypeError, ValueError):
        return None


gentle = [(e.title, t.epochs, t.gentle_from, t.gentle_strength) for e in entries.listed("settings", among=shown)
          for t in [train_settings(e.settings)] if t is not None and t.augment and t.gentle_from < t.epochs]
if gentle:
    st.caption("Gentler distortions at the end: " + "; ".join(
        f"{title}, epochs {start + 1}-{epochs}, every distortion at {strength:g} times its strength" for title, epochs, start,
        strength in gentle) + ". Training accuracy steps up there because the digits got easier, not because the model "
        "suddenly got better; validation digits are never distorted.")
if EPOCHS >= 4:
    st.caption("The accuracy axis starts just below the second epoch's figures, so the first epoch may sit "
               "under it; double-click a chart to see every point.")

# --- time -------------------------------------------------------------------------------------------------
st.header("Time per epoch", divider="gray")
fig = go.Figure()
for e in shown:
    df = histories[e.key]
    fig.add_bar(x=df["epoch"], y=df["seconds"], name=e.title, marker_color=e.color,
                hovertemplate="epoch %{x}: %{y:.1f} s<extra>" + e.title + "</extra>")
fig.update_layout(title="Seconds per epoch", barmode="group", height=360, xaxis=epoch_axis(EPOCHS), yaxis=dict(title="Seconds"),
                  legend=dict(orientation="h", yanchor="top", y=-0.22, x=0), margin=dict(t=50, b=10, l=10, r=10))
st.plotly_chart(fig, width="stretch")
summary = pd.DataFrame([
    {"Model": e.title, "Trained": (e.created or "")[:16].replace("T", " "), "Epochs": len(df),
     "Total": df["seconds"].sum(), "Per epoch": df["seconds"].mean(),
     "Best validation accuracy": 100 * df["val_accuracy"].max(),
     "At epoch": int(df.loc[df["val_accuracy"].idxmax(), "epoch"])}
    for e in shown for df in [histories[e.key]]
])
st.dataframe(summary, hide_index=True, width="stretch", column_config={
    "Model": st.column_config.TextColumn("Model", pinned=True),
    "Trained": st.column_config.TextColumn("Trained (UTC)", help="When the training run finished"),
    "Total": st.column_config.NumberColumn("Total", format="%.1f s", help="Sum of epoch times (excludes evaluation)"),
    "Per epoch": st.column_config.NumberColumn("Per epoch", format="%.1f s"),
    "Best validation accuracy": st.column_config.NumberColumn("Best validation accuracy", format="%.2f%%"),
})

# --- settings -------------------------------------------------------------------------------------------
st.header("Settings", divider="gray")


def flat(settings: dict, prefix: str = "") -> dict[str, str]:
    """Nested settings (training, augmentation) as one column of readable rows."""
    out = {}
    for k, v in settings.items():
        if isinstance(v, dict):
            out |= flat(v, f"{prefix}{k}: ")
        else:
            out[prefix + k] = ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    return out


with_settings = entries.listed("settings", among=shown)
if with_settings:
    table = pd.DataFrame({e.title: flat(e.settings) for e in with_settings})
    table = table.fillna("—").rename_axis("Setting").reset_index()
    st.dataframe(table, hide_index=True, width="stretch", height=38 + 35 * len(table),
                 column_config={"Setting": st.column_config.TextColumn("Setting", pinned=True)})
    short = [f"{e.title}: {len(histories[e.key])} of {e.settings['train']['epochs']}" for e in with_settings
             if e.settings.get("train", {}).get("epochs") not in (None, len(histories[e.key]))]
    if short:
        st.caption("These runs trained fewer epochs than their settings ask for (stopped early): "
                   + "; ".join(short) + ".")
    st.caption("Each setting is explained in the model's settings class in `core/models/`, the training "
               "settings (train) in `core/settings.py` and the augmentation strength in `core/augment.py`.")

EPOCH_COLUMNS = {
    "epoch": st.column_config.NumberColumn("Epoch", format="%d"),
    "loss": st.column_config.NumberColumn("Loss", format="%.4f"),
    "val_loss": st.column_config.NumberColumn("Val. loss", format="%.4f"),
    "accuracy": st.column_config.NumberColumn("Accuracy", format="%.2f%%"),
    "val_accuracy": st.column_config.NumberColumn("Val. accuracy", format="%.2f%%"),
    "lr": st.column_config.NumberColumn("Learning rate", format="%.2e"),
    "seconds": st.column_config.NumberColumn("Seconds", format="%.1f"),
}

# --- one model at a time ---------------------------------------------------------------------------------
st.header("Per model", divider="gray")
for tab, e in zip(st.tabs([e.title for e in shown]), shown):
    name, df = e.key, histories[e.key]
    with tab:
        for col, (what, (label, _, _)) in zip(st.columns(2), CURVES.items()):
            col.plotly_chart(learning_curves([(e.title, e.color, e.history)], what,
                                             f"{e.title}: {label.split(' (')[0].lower()}", height=360,
                                             log=log_loss and what == "loss"), width="stretch", key=f"{name}-{what}")
        cols = st.columns(2)
        if "lr" in df:
            fig = go.Figure(go.Scatter(x=df["epoch"], y=df["lr"], mode="lines+markers", line=dict(color=e.color),
                                       hovertemplate="epoch %{x}: %{y:.2e}<extra></extra>"))
            fig.update_layout(title="Learning rate (cosine schedule)", height=320, xaxis=epoch_axis(len(df)),
                              yaxis=dict(title="Learning rate", exponentformat="e"),
                              margin=dict(t=50, b=10, l=70, r=10))
            cols[0].plotly_chart(fig, width="stretch", key=f"{name}-lr")
        shown = df[[c for c in ("epoch", "loss", "val_loss", "accuracy", "val_accuracy", "lr", "seconds") if c in df]]
        shown = shown.assign(accuracy=100 * shown["accuracy"], val_accuracy=100 * shown["val_accuracy"])
        cols[1].dataframe(shown, hide_index=True, width="stretch", height=min(320, 38 + 35 * len(shown)),
                          column_config=EPOCH_COLUMNS)
