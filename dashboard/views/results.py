"""Results: the accuracy table, accuracy per digit, a confusion matrix per model, the digits most often
mistaken for one another, and where the three models agree and disagree. Models trained this session (Train
page) join the table, the per-digit chart and the confusion matrices; the rest compares the committed three.
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

import session_models
from common import (COLORS, SHORT, TITLES, agreement_breakdown, artifacts_caption, load_per_model,
                    heatmap, majority_vote, require_artifacts, same_labels, shared_errors, show_accuracy_table,
                    top_confusions)

DIGITS = list(range(10))
MARGIN = dict(t=50, b=10, l=10, r=10)

st.title("Results on the test set")
require_artifacts()
metrics = load_per_model("metrics")
if not metrics:
    st.stop()

mine = list(session_models.all().values())
show_accuracy_table(metrics, mine)
artifacts_caption()

charted = [e for e in mine if {"per_class_accuracy", "confusion"} <= set(e.metrics or {})]

# --- per digit ----------------------------------------------------------------------------------------
st.header("Accuracy per digit", divider="gray")
fig = go.Figure()
for name, m in metrics.items():
    fig.add_scatter(x=DIGITS, y=m["per_class_accuracy"], name=TITLES[name], mode="lines+markers",
                    line=dict(color=COLORS[name], width=2), marker=dict(size=9),
                    hovertemplate="digit %{x}: %{y:.2%}<extra>" + TITLES[name] + "</extra>")
for e in charted:  # dashed: trained here, on a subset, for a few epochs
    fig.add_scatter(x=DIGITS, y=e.metrics["per_class_accuracy"], name=f"{e.label} (this session)",
                    mode="lines+markers", line=dict(color=e.color, width=2, dash="dash"), marker=dict(size=7),
                    hovertemplate="digit %{x}: %{y:.2%}<extra>" + e.label + "</extra>")
fig.update_layout(title="Share of each digit's test images classified correctly", height=400, hovermode="x unified",
                  xaxis=dict(title="True digit", dtick=1), yaxis=dict(title="Accuracy", tickformat=".1%"),
                  legend=dict(orientation="h", yanchor="top", y=-0.2, x=0), margin=MARGIN)
st.plotly_chart(fig, width="stretch")
hardest = {n: int(np.argmin(m["per_class_accuracy"])) for n, m in metrics.items()}
st.caption("Hardest digit: " + "; ".join(
    f"{TITLES[n]}: {d} ({metrics[n]['per_class_accuracy'][d]:.1%})" for n, d in hardest.items()) + ".")

# --- confusion matrices ----------------------------------------------------------------------------------
st.header("Confusion matrices", divider="gray")
st.markdown("Rows are the true digit, columns the model's answer. The diagonal holds the correct answers; "
            "everything off it is a mistake, and the darker the cell the more often that mistake was made.")
errors_only = st.toggle("Hide the diagonal so the mistakes stand out", value=True)


def confusion_figure(title: str, color: str, cm: np.ndarray) -> go.Figure:
    z = cm.astype(float)
    text = cm.astype(str).astype(object)
    if errors_only:
        np.fill_diagonal(z, np.nan)
        text[np.diag_indices(10)] = ""
    text[(cm == 0)] = ""  # zeros would only be noise
    fig = heatmap(z, DIGITS, DIGITS, color, text=text, customdata=cm,
                  hovertemplate="true %{y}, answered %{x}: %{customdata:,}<extra></extra>")
    fig.update_layout(
        title=dict(text=f"{title}<br><sup>{int(cm.sum() - np.trace(cm)):,} mistakes</sup>"),
        height=440, margin=dict(t=70, b=10, l=10, r=10),
        xaxis=dict(title="Answer", tickmode="array", tickvals=DIGITS, range=[-0.5, 9.5], constrain="domain",
                   fixedrange=True),
        yaxis=dict(title="True digit", tickmode="array", tickvals=DIGITS, range=[9.5, -0.5], scaleanchor="x",
                   constrain="domain", fixedrange=True),
    )
    return fig


for col, (name, m) in zip(st.columns(len(metrics)), metrics.items()):
    col.plotly_chart(confusion_figure(TITLES[name], COLORS[name], np.asarray(m["confusion"])), width="stretch",
                     key=f"cm-{name}")
if charted:
    st.caption("Trained in this session:")
    for col, e in zip(st.columns(max(len(charted), len(metrics))), charted):
        col.plotly_chart(confusion_figure(e.label, e.color, np.asarray(e.metrics["confusion"])), width="stretch",
                         key=f"cm-{e.key}")

top = top_confusions(metrics)
if len(top):
    st.subheader("The digits most often mistaken for another")
    top.insert(0, "Mistake", [f"{t} read as {p}" for t, p in zip(top["True"], top["Predicted"])])
    st.dataframe(top.drop(columns=["True", "Predicted"]), hide_index=True, width="stretch", column_config={
        "Total": st.column_config.ProgressColumn("All models", format="%d", min_value=0,
                                                 max_value=int(top["Total"].max())),
    })
    st.page_link("views/misclassified.py", label="See these digits on the Misclassified page",
                 icon=":material/image_search:")

# --- agreement -----------------------------------------------------------------------------------------
st.header("Where the models agree and disagree", divider="gray")
preds = load_per_model("predictions")
if len(preds) < 2:
    st.info("Comparing models needs the predictions of at least two of them.", icon=":material/info:")
    st.stop()
if not same_labels(preds):
    st.error("The models' predictions files were made on different test sets, so they cannot be compared. "
             "Recreate them together with: python -m core.train", icon=":material/error:")
    st.stop()

table = agreement_breakdown(preds)
n_test = len(next(iter(preds.values()))["label"])
all_right = int(table.loc[table["kind"] == "all right", "Digits"].iloc[0])
all_wrong = int(table.loc[table["kind"] == "all wrong", "Digits"].sum())
vote = majority_vote(preds, metrics)
label = next(iter(preds.values()))["label"]
vote_accuracy = float(np.mean(vote == label))
best = max(preds, key=lambda n: float(np.mean(preds[n]["pred"] == label)))
best_accuracy = float(np.mean(preds[best]["pred"] == label))
c1, c2, c3, c4 = st.columns(4)
c1.metric(f"All {len(preds)} right", f"{all_right:,}", help=f"of {n_test:,} test digits", border=True)
c2.metric("At least one wrong", f"{n_test - all_right:,}", border=True)
c3.metric(f"All {len(preds)} wrong", f"{all_wrong:,}", help="Often ambiguous or mislabelled digits", border=True)
c4.metric("Majority vote", f"{vote_accuracy:.2%}",
          delta=f"{100 * (vote_accuracy - best_accuracy):+.2f} pp vs {SHORT[best]}",
          border=True, help="The answer at least two models give; where all differ, the most accurate model's. "
          "A vote only helps when the models' mistakes differ: two similar models can outvote a better third.")

left, right = st.columns([3, 2])
rest = table[table["kind"] != "all right"]
# Bars about one model take its colour (hatched when it is the only one right); all-wrong bars are grey.
fig = go.Figure(go.Bar(x=rest["Digits"], y=rest["Outcome"], orientation="h", text=rest["Digits"],
                       marker_color=[COLORS.get(m, "#8C8C8C") for m in rest["model"]],
                       marker_pattern_shape=["/" if k == "one right" else "" for k in rest["kind"]],
                       textposition="outside", cliponaxis=False, hovertemplate="%{y}: %{x:,} digits<extra></extra>"))
fig.update_layout(title="Test digits that at least one model gets wrong", height=380, margin=MARGIN,
                  xaxis=dict(title="Test digits"), yaxis=dict(autorange="reversed"))
left.plotly_chart(fig, width="stretch")

shared = shared_errors(preds)
fig = heatmap(shared.to_numpy(), list(shared.columns), list(shared.index), "#D55E00",
              text=np.vectorize(lambda v: f"{v:,}", otypes=[object])(shared.to_numpy()),
              hovertemplate="%{y} and %{x} both wrong: %{z:,}<extra></extra>")
fig.update_layout(title="Mistakes in common", height=380, margin=MARGIN,
                  yaxis=dict(autorange="reversed", scaleanchor="x"), xaxis=dict(side="bottom"))
right.plotly_chart(fig, width="stretch")
st.caption("The diagonal counts each model's own mistakes; the other cells count the digits both models get "
           "wrong. The fewer mistakes two models share, the more they fail for different reasons — and the more a "
           "vote among them can fix.")
st.page_link("views/misclassified.py", label="Browse the digits all models get wrong",
             icon=":material/image_search:", query_params={"all_wrong": "1"})
