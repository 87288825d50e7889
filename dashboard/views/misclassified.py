"""Misclassified: a gallery of the test digits the models got wrong, with all three models' answers on
every digit; filters by model, true digit and predicted digit, sorting by confidence, and a closer look
at any one digit's probabilities.
"""

import hashlib

import numpy as np
import streamlit as st

from core import compare
from dashboard import entries, ui
from dashboard.charts import probability_chart
from dashboard.pictures import digit_image

PAGE_SIZE = 30
DIGITS = list(range(10))
SORTS = {
    "Most confident mistakes first": ("confidence", False),
    "Least confident mistakes first": ("confidence", True),
    "Test-set order": ("index", True),
}

st.title("Misclassified digits")
st.markdown(
    "Every test digit that at least one model got wrong, with all three answers underneath — NumPy ANN: the "
    "network written from scratch, Keras ANN: the same network in Keras, LeNet-5: the convolutional network — "
    ":green[✓ right] or :red[✗ wrong], and how sure the model was. Confidently wrong answers are the "
    "interesting ones: often a digit a person would also hesitate over, or one that is mislabelled."
)
ui.require_artifacts()
shown = entries.listed("predictions", "misclassified")
if not shown:
    st.stop()
if not compare.same_labels({e.key: e.predictions for e in shown}):
    st.error("The models' predictions files were made on different test sets. Recreate them together with: "
             "python -m core.train", icon=":material/error:")
    st.stop()
by_key = {e.key: e for e in shown}
names = list(by_key)
committed = [e.key for e in shown if e.committed]
yours = [e.key for e in shown if not e.committed]
if yours:
    st.caption(f"Your models from this session ({', '.join(by_key[k].short for k in yours)}) are in the filter "
               "below, and their answers are on every card after the committed models'.")


@st.cache_data(show_spinner=False, max_entries=4)
def table(_preds, _wrong, key):
    return compare.mistakes(_preds, _wrong)


def fingerprint(e) -> str:
    """What identifies an entry's predictions for the cache: its answers, hashed."""
    return hashlib.blake2b(np.ascontiguousarray(e.predictions["pred"]).tobytes(), digest_size=8).hexdigest()


key = tuple((e.key, fingerprint(e)) for e in shown)
df, images = table({e.key: e.predictions for e in shown}, {e.key: e.misclassified for e in shown}, key)

# --- filters --------------------------------------------------------------------------------------
with st.container(border=True):
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    chosen = c1.pills("Mistakes made by", names, default=committed, selection_mode="multi",
                      format_func=lambda k: by_key[k].short,
                      key="models", help="Show the digits that any of these models got wrong")
    all_wrong = c2.toggle(f"Only digits all {len(committed)} {'committed ' if yours else ''}models get wrong",
                          value=st.query_params.get("all_wrong") == "1", key="all_wrong")
    c1, c2 = st.columns(2)
    true_digits = c1.pills("True digit", DIGITS, selection_mode="multi", key="true", help="None selected: all")
    predicted = c2.pills("Predicted digit (by a model that got it wrong)", DIGITS, selection_mode="multi",
                         key="pred", help="None selected: all")
    sort = st.selectbox("Sort by", list(SORTS), key="sort")

if not chosen and not all_wrong:
    st.info("Pick at least one model above.", icon=":material/touch_app:")
    st.stop()
models = committed if all_wrong else chosen
wrong_any = np.zeros(len(df), bool)
wrong_all = np.ones(len(df), bool)
conf = np.zeros(len(df))
pred_match = np.zeros(len(df), bool)
for n in models:
    w = df[f"wrong_{n}"].to_numpy()
    wrong_any |= w
    wrong_all &= w
    conf = np.maximum(conf, np.where(w, df[f"conf_{n}"].to_numpy(), 0))
    if predicted:
        pred_match |= w & df[f"pred_{n}"].isin(predicted).to_numpy()
mask = wrong_all if all_wrong else wrong_any
if true_digits:
    mask &= df["label"].isin(true_digits).to_numpy()
if predicted:
    mask &= pred_match
shown = df.assign(confidence=conf)[mask]
column, ascending = SORTS[sort]
shown = shown.sort_values([column, "index"], ascending=[ascending, True])

total = len(df)
st.markdown(f"**{len(shown):,}** of the {total:,} digits that at least one model got wrong.")
if shown.empty:
    st.info("No digit matches these filters.", icon=":material/filter_alt_off:")
    st.stop()

pages = -(-len(shown) // PAGE_SIZE)
page = st.pagination(pages, key="page") if pages > 1 else 1
page = min(page, pages)
rows = shown.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]


def answer(n, row) -> str:
    pred, p = int(row[f"pred_{n}"]), float(row[f"conf_{n}"])
    colour, mark = ("red", "✗") if row[f"wrong_{n}"] else ("green", "✓")
    sure = f"{p:.0%}" if p < 0.995 else ">99%"  # never a rounded-up 100%
    return f":{colour}[{mark} {by_key[n].short} **{pred}** ({sure})]"


# --- the gallery -----------------------------------------------------------------------------------------
with ui.gallery():
    for _, row in rows.iterrows():
        ui.digit_card(images[int(row["index"])], f"**True {int(row['label'])}** · test #{int(row['index'])}",
                      [answer(n, row) for n in names])

# --- one digit up close ----------------------------------------------------------------------------------
st.header("A closer look", divider="gray")
pick = st.selectbox("Test digit", rows["index"].tolist(), key="inspect",
                    format_func=lambda i: f"#{i}: a {int(df.loc[df['index'] == i, 'label'].iloc[0])}")
row = df.loc[df["index"] == pick].iloc[0]
left, right = st.columns([1, 4], vertical_alignment="center")
left.image(digit_image(images[int(pick)], 168), caption=f"True digit: {int(row['label'])}", width=168)
per_row = min(len(names), 3)  # the committed models, then this session's, three to a row
for start in range(0, len(names), per_row):
    for col, n in zip(right.columns(per_row), names[start:start + per_row]):
        with col:
            st.markdown(answer(n, row))
            st.caption(by_key[n].title)
            chart = probability_chart(by_key[n].predictions["probs"][int(pick)].astype(float), by_key[n].color,
                                      true_digit=int(row["label"]))
            st.plotly_chart(chart, width="stretch", key=f"probs-{n}", config={"displayModeBar": False})
st.caption("Bars: each model's probability for each digit; the coloured bar is its answer and ✓ marks the "
           "true digit. Two tall bars mean the model hesitated between them.")
