"""Your digits: the drawings visitors saved on the Draw page, for one collection (a class's, by
``?collection=room-12``): how many, each model's accuracy on them with its 95% interval beside its MNIST
test accuracy, accuracy per digit, the confusions, and every drawing with its label and all three answers,
filtered and a page at a time, newest first. Downloads as .npz and .csv. Only aggregates and one page of
drawings are read from the database, whatever the collection's size.
"""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import SPECS, ArtifactError, compare
from core.drawings import DrawingsError
from core.stats import wilson
from dashboard import drawings_db, entries, ui
from dashboard.charts import DIGITS, PERCENT, confusion_figure

PAGE_SIZE = 24
MARGIN = dict(t=50, b=10, l=10, r=10)

st.title("Your digits")
st.markdown("The drawings visitors chose to save on the Draw page, each with the digit its author says it is: a test "
            "set of real canvas handwriting that grows with every visit. Here every model is measured on it, beside "
            "its accuracy on MNIST's test set, so the gap between MNIST and *our* handwriting is plain.")


def fail(error: DrawingsError, doing: str) -> None:
    st.error(drawings_db.describe(error, doing), icon=":material/database:")
    st.stop()


name, problem = drawings_db.collection()
if problem:
    st.warning(problem, icon=":material/link_off:")
try:
    store = drawings_db.store()
    known = dict(store.collections())
except DrawingsError as e:
    fail(e, "The saved drawings cannot be shown now")


def _pick() -> None:
    problem = drawings_db.choose(st.session_state.get("drawings_pick") or "")
    if problem:
        st.session_state["drawings_pick_problem"] = problem


st.session_state["drawings_pick"] = name  # the box follows the address and the Draw page
st.selectbox("Collection", sorted({*known, name}), key="drawings_pick", accept_new_options=True, on_change=_pick,
             format_func=lambda n: f"{n} ({known.get(n, 0):,} drawings)",
             help="Each class can have its own: open the app with ?collection=room-12, or type a name here.")
if "drawings_pick_problem" in st.session_state:
    st.warning(f"That collection name was not taken: {st.session_state.pop('drawings_pick_problem')}",
               icon=":material/block:")

try:
    summary = store.summary(name)
except DrawingsError as e:
    fail(e, "The saved drawings cannot be shown now")
if summary.count == 0:
    st.info(f"No drawings saved in **{name}** yet. On the Draw page, draw a digit, say whether the models read it "
            "right, and save it: it appears here.", icon=":material/draw:")
    st.page_link("views/draw.py", label="Draw a digit", icon=":material/draw:", query_params={"collection": name})
    st.stop()

# --- the models on these drawings, beside MNIST ---------------------------------------------------------
models = [m for m in SPECS if m in summary.models] + [m for m in summary.models if m not in SPECS]
title = {m: SPECS[m].title if m in SPECS else m for m in models}
short = {m: SPECS[m].short if m in SPECS else m for m in models}
color = {m: SPECS[m].color if m in SPECS else "#8C8C8C" for m in models}
mnist = {}
for e in entries.committed():
    try:
        mnist[e.key] = float(e.metrics["test_accuracy"])
    except (ArtifactError, KeyError, TypeError, ValueError):
        continue  # no metrics here: the MNIST column says "—"

cards = st.columns(1 + len(models))
cards[0].metric("Drawings", f"{summary.count:,}", border=True, help=f"Saved in the collection {name}")
rows = []
for col, m in zip(cards[1:], models):
    n, k = summary.answered(m), summary.correct(m)
    lo, hi = wilson(k, n)
    gap = 100 * (k / n - mnist[m]) if m in mnist else None
    col.metric(title[m], f"{k / n:.1%}", border=True, delta=f"{gap:+.1f} pp vs MNIST" if gap is not None else None,
               help=f"{k:,} of {n:,} drawings read right; 95% interval {lo:.1%} – {hi:.1%}")
    rows.append({"Model": title[m], "Drawings": n, "Right": k, "Accuracy": 100 * k / n,
                 "95% interval": f"{100 * lo:.1f} – {100 * hi:.1f}%",
                 "MNIST test": 100 * mnist[m] if m in mnist else None, "Gap": gap})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
    "Accuracy": st.column_config.NumberColumn("Accuracy on these drawings", format="%.2f%%"),
    "95% interval": st.column_config.TextColumn(help="Wilson score interval: where the accuracy on another set of "
                                                "drawings like these would fall, 19 times out of 20", alignment="right"),
    "MNIST test": st.column_config.NumberColumn("MNIST test accuracy", format="%.2f%%",
                                                help="On MNIST's 10,000 test digits (the committed model)"),
    "Gap": st.column_config.NumberColumn("These drawings − MNIST", format="%+.2f pp"),
})
if summary.count < 100:
    st.caption(f"With {summary.count} drawings the intervals are wide: a few more drawings can move these figures "
               "a lot. The interval, not the single figure, says what the models really do.")

# --- per digit ---------------------------------------------------------------------------------------------
st.header("Accuracy per digit", divider="gray")
fig = go.Figure()
for m in models:
    fig.add_scatter(x=DIGITS, y=summary.per_digit(m), name=title[m], mode="lines+markers",
                    line=dict(color=color[m], width=2), connectgaps=False,
                    hovertemplate="digit %{x}: %{y:.1%}<extra>" + title[m] + "</extra>")
fig.update_layout(title="Share of each digit's drawings read right", height=360, hovermode="x unified", margin=MARGIN,
                  xaxis=dict(title="The digit its author says it is", dtick=1), yaxis=dict(title="Accuracy",
                  tickformat=PERCENT), legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
left, right = st.columns([3, 2], gap="medium")
left.plotly_chart(fig, width="stretch")
per_digit = pd.DataFrame({"Digit": DIGITS, "Drawings": summary.labels,
                          **{short[m]: 100 * summary.per_digit(m) for m in models}})
right.dataframe(per_digit, hide_index=True, width="stretch", height=422,
                column_config={short[m]: st.column_config.NumberColumn(format="%.1f%%") for m in models})

# --- confusions -------------------------------------------------------------------------------------------
st.header("What the models mistake for what", divider="gray")
errors_only = st.toggle("Hide the diagonal so the mistakes stand out", value=True, key="drawings_errors_only")
for start in range(0, len(models), 3):
    for col, m in zip(st.columns(3), models[start:start + 3]):
        col.plotly_chart(confusion_figure(title[m], color[m], summary.confusion[m], errors_only), width="stretch",
                         key=f"drawings-cm-{m}")
top = compare.top_confusions({m: summary.confusion[m] for m in models})
if len(top):
    top.insert(0, "Mistake", [f"{t} read as {p}" for t, p in zip(top["True"], top["Predicted"])])
    st.dataframe(top.drop(columns=["True", "Predicted"]).rename(columns=short), hide_index=True, width="stretch",
                 column_config={"Total": st.column_config.ProgressColumn("All models", format="%d", min_value=0,
                                                                         max_value=int(top["Total"].max()))})

# --- every drawing ------------------------------------------------------------------------------------------
st.header("Every drawing", divider="gray")
with st.container(border=True):
    c1, c2 = st.columns(2)
    digits = c1.pills("Digit", DIGITS, selection_mode="multi", key="drawings_digits", help="None selected: all")
    misread = c2.pills("Misread by", models, selection_mode="multi", key="drawings_misread",
                       format_func=lambda m: short[m], help="Drawings any of these models read wrong")
try:
    total = store.count(name, digits, misread)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(st.pagination(pages, key="drawings_page") if pages > 1 else 1, pages)
    shown = store.page(name, digits, misread, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
except DrawingsError as e:
    fail(e, "The drawings cannot be listed now")
st.markdown(f"**{total:,}** of the {summary.count:,} drawings, newest first.")
if not shown:
    st.info("No drawing matches these filters.", icon=":material/filter_alt_off:")


def answer(d, m: str) -> str:
    if m not in d.answers:
        return f":gray[{short[m]}: —]"
    digit, probs = d.answers[m]
    colour, mark = ("green", "✓") if digit == d.label else ("red", "✗")
    p = float(probs[digit])
    return f":{colour}[{mark} {short[m]} **{digit}** ({p:.0%})]" if p < 0.995 else \
        f":{colour}[{mark} {short[m]} **{digit}** (>99%)]"


with ui.gallery():
    for d in shown:
        ui.digit_card(d.image, f"**Labelled {d.label}** · #{d.id}",
                      [f":gray[{d.created:%Y-%m-%d %H:%M} UTC]"] + [answer(d, m) for m in models])

# --- the data set -------------------------------------------------------------------------------------------
st.header("Download", divider="gray")


def export(kind: str):
    def make():
        try:
            return store.npz_bytes(name) if kind == "npz" else store.csv_text(name)
        except DrawingsError as e:  # the file says why, rather than a traceback
            return f"The export failed: {e}\n"
    return make


c1, c2 = st.columns(2)
c1.download_button("The collection as .npz", data=export("npz"), file_name=f"{name}.npz",
                   mime="application/octet-stream", on_click="ignore", icon=":material/download:",
                   help="images uint8 (n, 28, 28), labels (n,), models (m,), answers (n, m), probs (n, m, 10), "
                   "ids and created (UTC): np.load(file) reads it")
c2.download_button("Labels and answers as .csv", data=export("csv"), file_name=f"{name}.csv", mime="text/csv",
                   on_click="ignore", icon=":material/table:")
st.caption("The same from the command line: `python -m core.drawings export --collection NAME --out FILE.npz` "
           "(or `.csv`). Deleting a collection is the operator's: `python -m core.drawings purge --collection NAME` "
           "on the server.")
