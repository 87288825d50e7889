"""Results: the accuracy table with intervals and the spread over seeds, whether each ranking is real,
accuracy, precision and recall per digit, a confusion matrix per model, the digits most often mistaken
for one another, where the models agree and disagree, and what each model costs for its accuracy.
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import compare
from dashboard import charts, entries, ui
from dashboard.charts import DIGITS, PERCENT, confusion_figure, heatmap

MARGIN = dict(t=50, b=10, l=10, r=10)

st.title("Results on the test set")
ui.require_artifacts()
shown = entries.listed("metrics")
if not shown:
    st.stop()
seeds = entries.seeds_of(shown)
ui.show_accuracy_table(shown, seeds)
ui.artifacts_caption()

# --- seeds and significance -------------------------------------------------------------------------
st.header("How much is luck?", divider="gray")
st.markdown("Training starts from random weights and sees the digits in a random order, so the same model trained "
            "again with another seed scores a little differently. Each dot is one seed; the ringed dot is the model "
            "this dashboard shows, the bar the mean ± one standard deviation.")
fig = charts.seed_strip([(e.title, e.color, t, e.settings["train"]["seed"]) for e, t in zip(shown, seeds)
                         if t is not None])
if fig is not None:
    st.plotly_chart(fig, width="stretch")
pairs = ui.pairs_of(shown, seeds)
if pairs:
    st.subheader("Is each difference real?")
    ui.show_verdicts(pairs)
    titles = {e.key: e.short for e in shown}
    st.dataframe(compare.pairs_frame(pairs, titles), hide_index=True, width="stretch", column_config={
        "Only A right": st.column_config.NumberColumn(help="Test digits the first model gets right and the "
                                                      "second wrong"),
        "Only B right": st.column_config.NumberColumn(help="The reverse"),
        "McNemar p": st.column_config.NumberColumn(format="%.2g", help="Exact two-sided binomial test on the two "
                                                   "counts: how often chance alone would split them this unevenly"),
        "A ahead (seed pairs)": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1,
                                                                help="Share of (seed of A, seed of B) pairs in "
                                                                "which A is more accurate"),
        "Seeds p": st.column_config.NumberColumn(format="%.2g", help="Permutation test on the per-seed "
                                                 "accuracies"),
        "Significant seed pairs": st.column_config.TextColumn(help="Seed pairs (the i-th seed of each) whose own "
                                                              "McNemar test gives p < 0.05"),
    })

# --- per digit ----------------------------------------------------------------------------------------
st.header("Accuracy per digit", divider="gray")
fig = go.Figure()
for e in shown:  # dashed: trained in this session, on a subset, for a few epochs
    fig.add_scatter(x=DIGITS, y=e.metrics["per_class_accuracy"], name=e.title, mode="lines+markers",
                    line=dict(color=e.color, width=2, dash=e.dash), marker=dict(size=9 if e.committed else 7),
                    hovertemplate="digit %{x}: %{y:.2%}<extra>" + e.title + "</extra>")
fig.update_layout(title="Share of each digit's test images classified correctly", height=400, hovermode="x unified",
                  xaxis=dict(title="True digit", dtick=1), yaxis=dict(title="Accuracy", tickformat=PERCENT),
                  legend=dict(orientation="h", yanchor="top", y=-0.2, x=0), margin=MARGIN)
left, right = st.columns([3, 2], gap="medium")
left.plotly_chart(fig, width="stretch")
left.caption("Hardest digit: " + "; ".join(
    f"{e.title}: {d} ({e.metrics['per_class_accuracy'][d]:.1%})"
    for e in shown for d in [int(np.argmin(e.metrics["per_class_accuracy"]))]) + ".")
with right:
    reported = entries.listed("predictions", among=shown)
    if reported:
        pick = st.selectbox("Classification report", [e.title for e in reported], key="report_model",
                            help="Precision: of the digits the model called d, the share that were d. Recall: of "
                            "the true d's, the share it found (the accuracy per digit). F1 balances the two.")
        e = next(e for e in reported if e.title == pick)
        report = compare.classification_frame(e.predictions["label"], e.predictions["pred"])
        percent = ("Precision", "Recall", "F1")
        st.dataframe(report.assign(**{c: 100 * report[c] for c in percent}), hide_index=True, width="stretch",
                     height=422, column_config={c: st.column_config.NumberColumn(format="%.2f%%") for c in percent})

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
elif not compare.same_labels(preds):
    st.error("The models' predictions files were made on different test sets, so they cannot be compared. "
             "Recreate them together with: python -m core.train", icon=":material/error:")
else:

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

# --- cost -------------------------------------------------------------------------------------------------
st.header("Cost against accuracy", divider="gray")
costs = compare.cost_table([(e.title, e.metrics, t) for e, t in zip(shown, seeds)])
# cost -> (the chart's title, short enough for a phone; its axis, with the unit)
AXES = {"Multiply-adds / image": ("Work to read one digit", "Multiply-adds per image"),
        "Training time": ("Seconds to train", "Training time, s (mean over seeds)"),
        "One image": ("Time to answer one drawing", "One image, ms"),
        "Parameters": ("Numbers learnt", "Parameters")}
axis = st.segmented_control("Cost", list(AXES), default="Multiply-adds / image", required=True, key="cost_axis")
st.plotly_chart(charts.cost_chart(costs, [e.color for e in shown], axis, *AXES[axis]), width="stretch")
st.caption("Up and to the left is better: more accuracy for less cost. The bars span ± one standard deviation over "
           "seeds. Multiply-adds count the arithmetic of one forward pass; times were measured on the machine "
           "that trained each model, on the day the caption at the top gives.")
st.dataframe(costs, hide_index=True, width="stretch", column_config={
    "Accuracy": st.column_config.NumberColumn("Accuracy (mean over seeds)", format="%.2f%%"),
    "Accuracy sd": st.column_config.NumberColumn("sd", format="%.2f"),
    "Parameters": st.column_config.NumberColumn(format="localized"),
    "Multiply-adds / image": st.column_config.NumberColumn(format="localized"),
    "Training time": st.column_config.NumberColumn("Training time (s)", format="%.0f"),
    "One image": st.column_config.NumberColumn("One image (ms)", format="%.2f"),
    "Batch": st.column_config.NumberColumn("In a batch (µs / image)", format="%.1f"),
})
