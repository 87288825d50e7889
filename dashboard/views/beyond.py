"""Beyond MNIST: the committed models on handwriting from people outside MNIST (UNIPEN pen strokes drawn on
the canvas, USPS postal scans uploaded), side by side with their MNIST test accuracy: accuracy with 95%
intervals, points lost, accuracy per digit, confusions, per writer, and the misread digits themselves.
Everything comes from ``beyond.json`` and ``beyond.npz``, written by ``python -m core.beyond``.
"""

import contextlib

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import SPECS, ArtifactError, artifacts, beyond
from core.stats import wilson
from dashboard import cache, entries, ui
from dashboard.charts import DIGITS, PERCENT, confusion_figure

MARGIN = dict(t=50, b=10, l=10, r=10)
PAGE_SIZE = 30
TITLES = {c.key: c.title for c in beyond.CONDITIONS}
COMMAND = beyond.COMMAND

st.title("Beyond MNIST")
st.markdown("How well do the three models read handwriting from people who are not in MNIST? Two sets the "
            "project never trains on: **UNIPEN** digits written with a stylus on pen tablets (41 writers), drawn "
            "stroke by stroke on the Draw page's canvas, large and small, and **USPS** digits scanned from "
            "envelopes, uploaded as images. Each goes through exactly the Draw page's preprocessing and models.")
ui.require_artifacts()


def missing(kind: str) -> bool:
    return not artifacts.path(kind, folder=cache.folder()).is_file()


def how_to_create() -> str:
    files = " and ".join(beyond.DATA_FILES.values())
    return (f"Create them with `{COMMAND}` (about two minutes on two cores; `--limit 500` for a quick look). "
            f"It needs {files} in {beyond.DEFAULT_DATA_DIR}, or in a folder named by `--data-dir DIR` or "
            f"`{beyond.ENV_VAR}`.")


try:
    result = cache.read("beyond")
except ArtifactError as e:
    if missing("beyond"):
        st.info("The results beyond MNIST are not in the artifacts folder yet. " + how_to_create(),
                icon=":material/info:")
    else:
        ui.show_artifact_error(e)
    st.stop()

names = [n for n in result["models"] if n in SPECS]
title = {n: SPECS[n].title for n in names}
short = {n: SPECS[n].short for n in names}
color = {n: SPECS[n].color for n in names}
rows = pd.DataFrame(beyond.accuracy_rows(result))
settings = result["settings"]
limited = f", at most {settings['limit']:,} digits per set" if settings.get("limit") else ""
writers = f", writers {', '.join(settings['writers'])}" if settings.get("writers") else ""
st.caption(f"Measured {result['created'][:10]} on the committed models (seed {settings['seed']}{limited}{writers}). "
           + beyond.reading(result))

# Results measured on other models than the artifacts now hold would be shown against the wrong MNIST figures.
metrics = {}  # the artifacts' own metrics, where readable (an unreadable one is the other pages' to report)
for e in entries.committed():
    if e.key in names:
        with contextlib.suppress(ArtifactError):
            metrics[e.key] = e.metrics
stale = []
for n, m in metrics.items():
    now = beyond.mnist_accuracy(m, settings.get("tta", False))
    if abs(now - result["models"][n]["mnist_test_accuracy"]) > 1e-9:
        stale.append(f"{short[n]} ({result['models'][n]['mnist_test_accuracy']:.2%} then, {now:.2%} now)")
if stale:
    st.warning("These results were measured on models that have since been retrained: " + ", ".join(stale)
               + f". Measure again with `{COMMAND}`.", icon=":material/history:")

# --- accuracy, side by side with MNIST --------------------------------------------------------------------
st.header("Accuracy beside MNIST", divider="gray")
groups = ["MNIST test"] + [r["title"] for r in result["results"]]
fig = go.Figure()
width = 0.6 / max(1, len(names))
for j, n in enumerate(names):
    info = result["models"][n]
    k = info["mnist_test_size"] - info["mnist_errors"]
    lo, hi = wilson(k, info["mnist_test_size"])
    mine = rows[rows["model"] == n]
    acc = [k / info["mnist_test_size"], *mine["accuracy"]]
    low = [lo, *mine["low"]]
    high = [hi, *mine["high"]]
    counts = [f"{k:,} of {info['mnist_test_size']:,}"] + [f"{c:,} of {t:,}" for c, t in zip(mine["correct"], mine["n"])]
    x = [i + (j - (len(names) - 1) / 2) * width for i in range(len(groups))]
    fig.add_scatter(x=x, y=acc, name=title[n], mode="markers", marker=dict(color=color[n], size=11),
                    error_y=dict(type="data", symmetric=False, array=np.subtract(high, acc),
                                 arrayminus=np.subtract(acc, low), color=color[n], thickness=2, width=5),
                    customdata=np.stack([groups, counts, [f"{100 * a:.1f}–{100 * b:.1f}%" for a, b in zip(low, high)]], 1),
                    hovertemplate="%{customdata[0]}: %{y:.2%} (%{customdata[1]}), 95% interval %{customdata[2]}"
                                  "<extra>" + title[n] + "</extra>")
# Each set's name on two lines ("UNIPEN," / "drawn large") and never turned: on a phone, turned names ran into the legend.
fig.update_layout(title="Accuracy and its 95% interval (Wilson)", height=430, margin=MARGIN,
                  xaxis=dict(tickmode="array", tickvals=list(range(len(groups))), tickangle=0,
                             ticktext=[g.replace(", ", ",<br>", 1) for g in groups]),
                  yaxis=dict(title="Accuracy", tickformat=PERCENT), legend=dict(orientation="h", y=-0.15, x=0))
st.plotly_chart(fig, width="stretch", key="beyond-accuracy")

table = pd.DataFrame({
    "Set": [beyond.SET_TITLES.get(s, s) for s in rows["set"]],
    "Condition": [TITLES.get(f"{s}/{c}", c).split(", ", 1)[-1] for s, c in zip(rows["set"], rows["condition"])],
    "Model": [title.get(m, m) for m in rows["model"]],
    "Digits": rows["n"], "Correct": rows["correct"], "No digit": rows["no_digit"],
    "Accuracy": 100 * rows["accuracy"],
    "95% interval": [f"{100 * lo:.1f}–{100 * hi:.1f}%" for lo, hi in zip(rows["low"], rows["high"])],
    "MNIST test": [100 * v if v is not None else None for v in rows["mnist"]],
    "vs MNIST": [-v if v is not None else None for v in rows["points_lost"]],
})
st.dataframe(table, hide_index=True, width="stretch", column_config={
    "Digits": st.column_config.NumberColumn("Digits", format="localized"),
    "Correct": st.column_config.NumberColumn("Correct", format="localized"),
    "No digit": st.column_config.NumberColumn("No digit", format="localized",
                                              help="The preprocessing found no digit: wrong for every model"),
    "Accuracy": st.column_config.NumberColumn("Accuracy", format="%.2f%%"),
    "95% interval": st.column_config.TextColumn("95% interval", help="Wilson score interval, from the counts"),
    "MNIST test": st.column_config.NumberColumn("MNIST test", format="%.2f%%"),
    "vs MNIST": st.column_config.NumberColumn("vs MNIST", format="%+.2f pp",
                                              help="Percentage points above (+) or below (-) MNIST test accuracy"),
})

lost = rows.pivot_table(index="model", columns="title", values="points_lost", sort=False)
cols = st.columns(len(names))
for col, n in zip(cols, names):
    worst = lost.loc[n].idxmax()
    col.metric(f"{title[n]}: most lost", f"{-lost.loc[n].max():+.1f} pp", delta=worst, delta_color="off",
               delta_arrow="off", border=True, help="Points lost against its MNIST test accuracy, worst condition")
st.caption("The models are MNIST models: the interval says how sure each figure is, and the points lost against MNIST "
           "say how far that training carries to other people's handwriting. "
           + " ".join(f"**{c.title}**: {c.how}" for c in beyond.CONDITIONS if any(r["condition"] == c.name and
                                                                          r["set"] == c.set for r in result["results"])))

# --- per digit ----------------------------------------------------------------------------------------------
st.header("Which digits suffer", divider="gray")
st.markdown("Other people write some digits in styles MNIST rarely has: **slashed zeros** (read as 4, 9 or 8), "
            "**1s with a long flag** (read as 7), **7s with a crossbar**, **9s with a curled tail** (read as 3, 7 "
            "or 8) and **closed, printed 4s** (read as 6 or 9). The per-digit accuracy (dotted: the same model on "
            "MNIST's test set) and the confusions below show where each model stumbles.")
keys = [f"{r['set']}/{r['condition']}" for r in result["results"]]
by_key = dict(zip(keys, result["results"]))
chosen = st.segmented_control("Set and condition", keys, default=keys[0], required=True, key="beyond_condition",
                              format_func=lambda k: by_key[k].get("title", k))
entry = by_key[chosen]
class_n = np.asarray(entry["class_n"])
mnist_per_class = {n: m["per_class_accuracy"] for n, m in metrics.items()}
fig = go.Figure()
for n in names:
    per = np.asarray(entry["models"][n]["class_correct"]) / np.maximum(class_n, 1)
    fig.add_scatter(x=DIGITS, y=per, name=title[n], mode="lines+markers", line=dict(color=color[n], width=2),
                    marker=dict(size=9), hovertemplate="digit %{x}: %{y:.2%}<extra>" + title[n] + "</extra>")
    if n in mnist_per_class:
        fig.add_scatter(x=DIGITS, y=mnist_per_class[n], name=f"{short[n]}, MNIST test", mode="lines",
                        line=dict(color=color[n], width=1.5, dash="dot"),
                        hovertemplate="digit %{x} on MNIST: %{y:.2%}<extra>" + title[n] + "</extra>")
fig.update_layout(title=f"Digits read correctly, {entry.get('title', chosen)}",  # short enough for a phone
                  height=420, hovermode="x unified", xaxis=dict(title="True digit", dtick=1),
                  yaxis=dict(title="Accuracy", tickformat=PERCENT), legend=dict(orientation="h", y=-0.2, x=0),
                  margin=MARGIN)
st.plotly_chart(fig, width="stretch", key="beyond-per-digit")


def worst_answer(cm: np.ndarray, digit: int) -> str:
    row = cm[digit].copy()
    row[digit] = 0
    return f"{int(row.argmax())} ({int(row.max()):,}×)" if row.max() else "—"


suffer = []
for d in (0, 1, 4, 7):
    line = {"Digit": d, "Digits": int(class_n[d])}
    for n in names:
        cm = np.asarray(entry["models"][n]["confusion"])
        line[f"{short[n]}"] = entry["models"][n]["class_correct"][d] / max(int(class_n[d]), 1) * 100
        line[f"{short[n]}: most read as"] = worst_answer(cm, d)
    suffer.append(line)
st.dataframe(pd.DataFrame(suffer), hide_index=True, width="stretch", column_config={
    **{short[n]: st.column_config.NumberColumn(short[n], format="%.1f%%") for n in names}})
st.caption("The four digits whose other styles MNIST rarely shows: accuracy and the most common wrong answer.")

errors_only = st.toggle("Hide the diagonal so the mistakes stand out", value=True, key="beyond_errors_only")
for col, n in zip(st.columns(len(names)), names):
    col.plotly_chart(confusion_figure(title[n], color[n], entry["models"][n]["confusion"], errors_only),
                     width="stretch", key=f"beyond-cm-{n}")
if entry["no_digit"]:
    st.caption(f"{entry['no_digit']:,} digits gave no digit in the preprocessing; they are in no confusion cell and "
               "count as wrong for every model.")

if entry.get("writers"):
    spread = {n: beyond.writer_spread(entry, n, result["models"][n]["mnist_test_accuracy"]) for n in names}
    worst = max(s["worst"] for s in spread.values())
    st.markdown("**Per writer.** A few writers' styles make many of the mistakes, so the accuracy over all digits "
                "understates how well a typical person is read.")
    st.dataframe(pd.DataFrame([{
        "Model": short[n], "All digits": 100 * entry["models"][n]["correct"] / entry["n"],
        "Median writer": 100 * s["median"],
        "Within 1 pp of MNIST": f"{s['near_mnist']} of {s['writers']} writers",
        f"{worst} worst-read writers": f"{s['worst_digits']:.0%} of the digits, {s['worst_errors']:.0%} of the errors",
    } for n, s in spread.items()]), hide_index=True, width="stretch", column_config={
        "All digits": st.column_config.NumberColumn("All digits", format="%.2f%%"),
        "Median writer": st.column_config.NumberColumn("Median writer", format="%.2f%%",
                                                       help="Half the writers are read at least this well"),
        "Within 1 pp of MNIST": st.column_config.TextColumn(
            "Within 1 pp of MNIST", help="Writers read no more than one point below the model's MNIST test accuracy"),
    })
    with st.expander(f"Per writer: {len(entry['writers'])} writers in {entry.get('title', chosen)}"):
        per_writer = pd.DataFrame([{"Writer": w, "Digits": c["n"],
                                    **{short[n]: 100 * c["correct"][n] / c["n"] for n in names}}
                                   for w, c in entry["writers"].items()])
        per_writer = per_writer.sort_values(short[names[-1]]) if names else per_writer
        st.dataframe(per_writer, hide_index=True, width="stretch", column_config={
            **{short[n]: st.column_config.NumberColumn(short[n], format="%.1f%%") for n in names}})
        st.caption("One person's digits look alike, so accuracy varies by writer much more than by chance: tune on "
                   "some writers and check on the others (`core.beyond.split_writers`), never split by digit.")

# --- the misread digits ----------------------------------------------------------------------------------------
st.header("Misread digits", divider="gray")
try:
    gallery = cache.read("beyond_gallery")
except ArtifactError as e:
    if missing("beyond_gallery"):
        st.info("The misread digits are not in the artifacts folder. " + how_to_create(), icon=":material/info:")
    else:
        ui.show_artifact_error(e)
    st.stop()

g_models = [str(m) for m in gallery["models"]]
g_keys = [f"{s}/{c}" for s, c in zip(gallery["set"].tolist(), gallery["condition"].tolist())]
st.markdown("A sample of the digits at least one model got wrong, as the models saw them (28×28, after the "
            "preprocessing), with every model's answer: :green[✓ right] or :red[✗ wrong].")
options = [k for k in keys if k in set(g_keys)]
with st.container(border=True):
    c1, c2 = st.columns([3, 2])
    where = c1.pills("Set and condition", options, selection_mode="multi", key="beyond_sets",
                     format_func=lambda k: by_key[k].get("title", k) if k in by_key else k,
                     help="None selected: all")
    true_digits = c2.pills("True digit", DIGITS, selection_mode="multi", key="beyond_true",
                           help="None selected: all")
mask = np.ones(len(g_keys), bool)
if where:
    mask &= np.isin(g_keys, where)
if true_digits:
    mask &= np.isin(gallery["label"], true_digits)
picked = np.flatnonzero(mask)
st.markdown(f"**{len(picked):,}** misread digits shown of the {len(g_keys):,} kept.")
if not len(picked):
    st.info("No misread digit matches these filters.", icon=":material/filter_alt_off:")
    st.stop()
pages = -(-len(picked) // PAGE_SIZE)
page = min(st.pagination(pages, key="beyond_page") if pages > 1 else 1, pages)


def answer(m: str, pred: int, label: int) -> str:
    name = SPECS[m].short if m in SPECS else m
    return f":green[✓ {name} **{pred}**]" if pred == label else f":red[✗ {name} **{pred}**]"


with ui.gallery():
    for i in picked[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]:
        label = int(gallery["label"][i])
        key = g_keys[i]
        where_from = by_key[key].get("title", key) if key in by_key else key
        writer = f" · writer {gallery['writer'][i]}" if str(gallery["writer"][i]) else ""
        ui.digit_card(gallery["image"][i], f"**True {label}** · {where_from}{writer}",
                      [answer(m, int(p), label) for m, p in zip(g_models, gallery["pred"][i])])
