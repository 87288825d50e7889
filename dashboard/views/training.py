"""Training: loss and accuracy per epoch (training and validation), overlaid for comparison and per
model; the time each epoch took; the learning-rate schedule; and the settings each model was trained with.
"""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from common import COLORS, TITLES, load_per_model, require_artifacts

st.title("Training")
st.markdown(
    "Each model saw the training digits once per epoch, in a new random order and with random small "
    "distortions, and was then scored on 5,000 validation digits it never trains on. Solid lines are the "
    "training set, dashed lines validation. Training figures are averages over an epoch taken while the "
    "weights were still changing (and on distorted digits, with dropout for LeNet), so they can sit below "
    "the validation figures."
)
require_artifacts()
histories = {name: pd.DataFrame(h) for name, h in load_per_model("history").items()}
if not histories:
    st.stop()

METRICS = {
    "loss": ("Loss (cross-entropy)", None, "Lower is better"),
    "accuracy": ("Accuracy", ".1%", "Higher is better"),
}


def curves(fig, name, df, what, show_train=True, legend=True):
    color = COLORS[name]
    fmt = ":.2%" if what == "accuracy" else ":.4f"
    if show_train:
        fig.add_scatter(x=df["epoch"], y=df[what], name=f"{TITLES[name]}, training", mode="lines+markers",
                        line=dict(color=color, width=2.5), marker=dict(size=5), legendgroup=name,
                        showlegend=legend,
                        hovertemplate=f"epoch %{{x}}: %{{y{fmt}}}<extra>{TITLES[name]}, training</extra>")
    fig.add_scatter(x=df["epoch"], y=df[f"val_{what}"], name=f"{TITLES[name]}, validation", mode="lines+markers",
                    line=dict(color=color, width=2.5, dash="dash"), marker=dict(size=5, symbol="diamond"),
                    legendgroup=name, showlegend=legend,
                    hovertemplate=f"epoch %{{x}}: %{{y{fmt}}}<extra>{TITLES[name]}, validation</extra>")


EPOCHS = max(len(df) for df in histories.values())
EPOCH_AXIS = dict(title="Epoch", tick0=1, dtick=max(1, -(-EPOCHS // 15)))  # whole epochs only


LOG_TICKS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5]  # 1-2-5: readable, not crowded


def zoomed_range(fig) -> list[float] | None:
    """Accuracy axis from just below the worst value after epoch 1 to 100%: epoch 1 is far below the
    rest and would squash the differences that matter. Double-clicking the chart shows everything."""
    late = [y for trace in fig.data for y in list(trace.y)[1:]]
    if EPOCHS < 4 or not late:
        return None
    return [max(0.0, min(late) - 0.005), 1.0 + 0.002]


def layout(fig, title, what, height=420, log=False, zoom=False):
    label, fmt, _ = METRICS[what]
    yaxis = dict(title=label, tickformat=fmt)
    if log:
        yaxis |= dict(type="log", tickmode="array", tickvals=LOG_TICKS, tickformat="~g")
    if zoom and (bounds := zoomed_range(fig)):
        yaxis |= dict(range=bounds)
    fig.update_layout(
        title=title, height=height, hovermode="x unified" if len(fig.data) <= 2 else "closest",
        xaxis=EPOCH_AXIS,
        yaxis=yaxis,
        legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0),
        margin=dict(t=50, b=10, l=10, r=10),
    )
    return fig


# --- all models on one chart ------------------------------------------------------------------------
st.header("Compared", divider="gray")
c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
which = c1.segmented_control("Curves", ["Training and validation", "Validation only"],
                             default="Training and validation", key="which", required=True)
log_loss = c2.toggle("Log scale for loss", value=True, help="Late epochs change the loss by little; a log "
                     "scale keeps those changes visible.")
show_train = which == "Training and validation"
cols = st.columns(2)
for col, what in zip(cols, METRICS):
    fig = go.Figure()
    for name, df in histories.items():
        curves(fig, name, df, what, show_train=show_train)
    label, _, hint = METRICS[what]
    col.plotly_chart(layout(fig, f"{label.split(' (')[0]} per epoch ({hint.lower()})", what,
                            log=log_loss and what == "loss", zoom=what == "accuracy"), width="stretch")
if EPOCHS >= 4:
    st.caption("The accuracy axis starts just below the second epoch's figures, so the first epoch may sit "
               "under it; double-click a chart to see every point.")

# --- time -------------------------------------------------------------------------------------------------
st.header("Time per epoch", divider="gray")
fig = go.Figure()
for name, df in histories.items():
    fig.add_bar(x=df["epoch"], y=df["seconds"], name=TITLES[name], marker_color=COLORS[name],
                hovertemplate="epoch %{x}: %{y:.1f} s<extra>" + TITLES[name] + "</extra>")
fig.update_layout(title="Seconds per epoch", barmode="group", height=360, xaxis=EPOCH_AXIS, yaxis=dict(title="Seconds"),
                  legend=dict(orientation="h", yanchor="top", y=-0.22, x=0), margin=dict(t=50, b=10, l=10, r=10))
st.plotly_chart(fig, width="stretch")
summary = pd.DataFrame([
    {"Model": TITLES[n], "Epochs": len(df), "Total": df["seconds"].sum(), "Per epoch": df["seconds"].mean(),
     "Best validation accuracy": 100 * df["val_accuracy"].max(),
     "At epoch": int(df.loc[df["val_accuracy"].idxmax(), "epoch"])}
    for n, df in histories.items()
])
st.dataframe(summary, hide_index=True, width="stretch", column_config={
    "Model": st.column_config.TextColumn("Model", pinned=True),
    "Total": st.column_config.NumberColumn("Total", format="%.1f s", help="Sum of epoch times (excludes evaluation)"),
    "Per epoch": st.column_config.NumberColumn("Per epoch", format="%.1f s"),
    "Best validation accuracy": st.column_config.NumberColumn("Best validation accuracy", format="%.2f%%"),
})

# --- settings -------------------------------------------------------------------------------------------
st.header("Settings", divider="gray")
settings = load_per_model("settings")
if settings:
    table = pd.DataFrame({TITLES[n]: {k: ", ".join(map(str, v)) if isinstance(v, list) else str(v)
                                      for k, v in s["settings"].items()} for n, s in settings.items()})
    table = table.fillna("—").rename_axis("Setting").reset_index()
    st.dataframe(table, hide_index=True, width="stretch", height=38 + 35 * len(table),
                 column_config={"Setting": st.column_config.TextColumn("Setting", pinned=True)})
    short = [f"{TITLES[n]}: {len(histories[n])} of {s['settings'].get('epochs')}" for n, s in settings.items()
             if n in histories and s["settings"].get("epochs") not in (None, len(histories[n]))]
    if short:
        st.caption("This run trained fewer epochs than the settings ask for (a quick run with `--epochs`): "
                   + "; ".join(short) + ".")
    st.caption("Each setting is explained in the model's settings class in `core/models/`.")

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
for tab, (name, df) in zip(st.tabs([TITLES[n] for n in histories]), histories.items()):
    with tab:
        cols = st.columns(2)
        for col, what in zip(cols, METRICS):
            fig = go.Figure()
            curves(fig, name, df, what)
            col.plotly_chart(layout(fig, f"{TITLES[name]}: {METRICS[what][0].split(' (')[0].lower()}", what,
                                    height=360, log=log_loss and what == "loss"), width="stretch", key=f"{name}-{what}")
        cols = st.columns(2)
        if "lr" in df:
            fig = go.Figure(go.Scatter(x=df["epoch"], y=df["lr"], mode="lines+markers", line=dict(color=COLORS[name]),
                                       hovertemplate="epoch %{x}: %{y:.2e}<extra></extra>"))
            fig.update_layout(title="Learning rate (cosine schedule)", height=320, xaxis=EPOCH_AXIS,
                              yaxis=dict(title="Learning rate", exponentformat="e"),
                              margin=dict(t=50, b=10, l=70, r=10))
            cols[0].plotly_chart(fig, width="stretch", key=f"{name}-lr")
        shown = df[[c for c in ("epoch", "loss", "val_loss", "accuracy", "val_accuracy", "lr", "seconds") if c in df]]
        shown = shown.assign(accuracy=100 * shown["accuracy"], val_accuracy=100 * shown["val_accuracy"])
        cols[1].dataframe(shown, hide_index=True, width="stretch", height=min(320, 38 + 35 * len(shown)),
                          column_config=EPOCH_COLUMNS)
