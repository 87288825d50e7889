"""Results: the accuracy table, accuracy per digit, a confusion matrix per model, the digits most often
mistaken for one another, and where the models agree and disagree.
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import compare
from dashboard import entries, ui
from dashboard.charts import DIGITS, confusion_figure, heatmap

MARGIN = dict(t=50, b=10, l=10, r=10)

st.title("Results on the test set")
ui.require_artifacts()
shown = entries.listed("metrics")
if not shown:
    st.stop()
ui.show_accuracy_table(shown)
ui.artifacts_caption()

# --- per digit ----------------------------------------------------------------------------------------
st.header("Accuracy per digit", divider="gray")
fig = go.Figure()
for e in shown:  # dashed: trained in this session, on a subset, for a few epochs
    fig.add_scatter(x=DIGITS, y=e.metrics["per_class_accuracy"], name=e.title, mode="lines+markers",
                    line=dict(color=e.color, width=2, dash=e.dash), marker=dict(size=9 if e.committed else 7),
                    hovertemplate="digit %{x}: %{y:.2%}<extra>" + e.title + "</extra>")
fig.update_layout(title="Share of each digit's test images classified correctly", height=400, hovermode="x unified",
                  xaxis=dict(title="True digit", dtick=1), yaxis=dict(title="Accuracy", tickformat=".1%"),
                  legend=dict(orientation="h", yanchor="top", y=-0.2, x=0), margin=MARGIN)
st.plotly_chart(fig, width="stretch")
st.caption("Hardest digit: " + "; ".join(
    f"{e.title}: {d} ({e.metrics['per_class_accuracy'][d]:.1%})"
    for e in shown for d in [int(np.argmin(e.metrics["per_class_accuracy"]))]) + ".")

# --- confusion matrices ----------------------------------------------------------------------------------
st.header("Confusion matrices", divider="gray")
st.markdown("Rows are the true digit, columns the model's answer. The diagonal holds the correct answers; "
            "everything off it is a mistake, and the darker the cell the more often that mistake was made.")
errors_only = st.toggle("Hide the diagonal so the mistakes stand out", value=True)


per_row = 3
for start in range(0, len(shown), per_row):
    for col, e in zip(st.columns(per_row), shown[start:start + per_row]):
        col.plotly_chart(confusion_figure(e.title, e.color, e.metrics["confusion"], errors_only), width="stretch",
                         key=f"cm-{e.key}")

top = compare.top_confusions({e.key: e.metrics["confusion"] for e in shown})
if len(top):
    st.subheader("The digits most often mistaken for another")
    top = top.rename(columns={e.key: e.short for e in shown})
    top.insert(0, "Mistake", [f"{t} read as {p}" for t, p in zip(top["True"], top["Predicted"])])
    st.dataframe(top.drop(columns=["True", "Predicted"]), hide_index=True, width="stretch", column_config={
        "Total": st.column_config.ProgressColumn("All models", format="%d", min_value=0,
                                                 max_value=int(top["Total"].max())),
    })
    st.page_link("views/misclassified.py", label="See these digits on the Misclassified page",
                 icon=":material/image_search:")

# --- agreement -----------------------------------------------------------------------------------------
st.header("Where the models agree and disagree", divider="gray")
compared = entries.listed("predictions", among=shown)
preds = {e.key: e.predictions for e in compared}
short = {e.key: e.short for e in compared}
color = {e.key: e.color for e in compared}
if len(preds) < 2:
    st.info("Comparing models needs the predictions of at least two of them.", icon=":material/info:")
    st.stop()
if not compare.same_labels(preds):
    st.error("The models' predictions files were made on different test sets, so they cannot be compared. "
             "Recreate them together with: python -m core.train", icon=":material/error:")
    st.stop()

table = compare.agreement_breakdown(preds, short)
n_test = len(next(iter(preds.values()))["label"])
all_right = int(table.loc[table["kind"] == "all right", "Digits"].iloc[0])
all_wrong = int(table.loc[table["kind"] == "all wrong", "Digits"].sum())
vote = compare.majority_vote(preds, {e.key: e.metrics["test_accuracy"] for e in compared})
label = next(iter(preds.values()))["label"]
vote_accuracy = float(np.mean(vote == label))
best = max(preds, key=lambda n: float(np.mean(preds[n]["pred"] == label)))
best_accuracy = float(np.mean(preds[best]["pred"] == label))
c1, c2, c3, c4 = st.columns(4)
c1.metric(f"All {len(preds)} right", f"{all_right:,}", help=f"of {n_test:,} test digits", border=True)
c2.metric("At least one wrong", f"{n_test - all_right:,}", border=True)
c3.metric(f"All {len(preds)} wrong", f"{all_wrong:,}", help="Often ambiguous or mislabelled digits", border=True)
c4.metric("Majority vote", f"{vote_accuracy:.2%}",
          delta=f"{100 * (vote_accuracy - best_accuracy):+.2f} pp vs {short[best]}",
          border=True, help="The answer at least two models give; where all differ, the most accurate model's. "
          "A vote only helps when the models' mistakes differ: two similar models can outvote a better third.")

left, right = st.columns([3, 2])
rest = table[table["kind"] != "all right"]
# Bars about one model take its colour (hatched when it is the only one right); all-wrong bars are grey.
fig = go.Figure(go.Bar(x=rest["Digits"], y=rest["Outcome"], orientation="h", text=rest["Digits"],
                       marker_color=[color.get(m, "#8C8C8C") for m in rest["model"]],
                       marker_pattern_shape=["/" if k == "one right" else "" for k in rest["kind"]],
                       textposition="outside", cliponaxis=False, hovertemplate="%{y}: %{x:,} digits<extra></extra>"))
fig.update_layout(title="Test digits that at least one model gets wrong", height=380, margin=MARGIN,
                  xaxis=dict(title="Test digits"), yaxis=dict(autorange="reversed"))
left.plotly_chart(fig, width="stretch")

shared = compare.shared_errors(preds).rename(index=short, columns=short)
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
