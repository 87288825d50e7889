"""Charts every page draws the same way: a model's ten probabilities (a Plotly chart, or plain HTML bars
where a chart is redrawn on every stroke, and the Draw page's answer cards around them), heatmaps that read in light and dark themes, confusion
matrices, and learning curves (loss or accuracy per epoch)."""

from __future__ import annotations

import html
import re

import numpy as np
import plotly.graph_objects as go

DIGITS = list(range(10))
# An accuracy axis's tick format: 99%, 99.5%, 99.25%. Whole percents (".0%") label ticks half a point apart
# "99%" twice, and a narrow range (the Beyond page's 96-100%) gets such ticks.
PERCENT = ".2~%"
LOG_TICKS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5]  # 1-2-5: readable, not crowded
CURVES = {  # what -> (axis title, tick format, hint)
    "loss": ("Loss (cross-entropy)", None, "Lower is better"),
    "accuracy": ("Accuracy", ".1%", "Higher is better"),
}


def probability_chart(probs, color: str, height: int = 230, true_digit: int | None = None):
    """The ten probabilities of one model as bars, its answer in the model's colour."""
    probs = np.asarray(probs, dtype=float)
    top = int(probs.argmax())
    ticks = [f"<b>{d} ✓</b>" if d == true_digit else str(d) for d in range(10)]
    fig = go.Figure(go.Bar(
        x=list(range(10)), y=probs,
        marker_color=[color if d == top else "rgba(127,127,127,0.45)" for d in range(10)],
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


# The HTML bars' look, sent once per page (``st.html``): grey bars, the answer in the model's colour, text in
# the theme's own colour, so they read in light and dark themes alike.
BARS_CSS = """<style>
.pbars{display:flex;gap:3px;padding-top:18px;font-size:12px;line-height:1.3}
.pbars .pc{flex:1;min-width:0;display:flex;flex-direction:column}
.pbars .pa{position:relative;display:flex;align-items:flex-end;border-bottom:1px solid rgba(127,127,127,.5);
  background:linear-gradient(rgba(127,127,127,.18) 1px,transparent 1px) 0 0/100% 50%}
.pbars .pb{position:relative;width:100%;min-height:1px;background:rgba(127,127,127,.45);border-radius:2px 2px 0 0}
.pbars .pb span{position:absolute;bottom:100%;left:50%;transform:translateX(-50%);white-space:nowrap}
.pbars .pd{text-align:center;font-size:13px;padding-top:2px}
</style>"""


def probability_bars(probs, color: str, height: int = 150, true_digit: int | None = None) -> str:
    """The ten probabilities of one model as HTML bars (``BARS_CSS``): what ``probability_chart`` shows, at a
    hundredth of its cost to build, send and draw, for a page that redraws them on every stroke.

    The answer is in the model's colour and labelled, as is every digit at 10% or more; the true digit, if
    known, is marked; hovering a bar gives its probability. Heights are clipped to [0, 1]."""
    probs = np.clip(np.asarray(probs, dtype=float), 0, 1)
    top = int(probs.argmax())
    shown = [(f"{p:.0%}" if p < 0.995 else "&gt;99%") if p >= 0.1 or d == top else "" for d, p in enumerate(probs)]
    cells = []
    for d, (p, label) in enumerate(zip(probs, shown)):
        fill = f";background:{html.escape(color)}" if d == top else ""
        tick = f"<b>{d} ✓</b>" if d == true_digit else str(d)
        cells.append(f'<div class="pc" title="digit {d}: {p:.2%}"><div class="pa" style="height:{height}px">'
                     f'<div class="pb" style="height:{100 * p:.1f}%{fill}"><span>{label}</span></div></div>'
                     f'<div class="pd">{tick}</div></div>')
    summary = ", ".join(f"{d}: {label}" for d, label in enumerate(shown) if label)
    return f'<div class="pbars" role="img" aria-label="Probabilities, {summary}">{"".join(cells)}</div>'


# The answer cards' look (``answer_cards``), sent once per page beside BARS_CSS. A card is drawn like Streamlit's
# bordered container holding an st.metric; the cards sit in a row, one per line under Streamlit's 640 px column
# breakpoint, as st.columns would.
ANSWERS_CSS = """<style>
.answers{display:grid;grid-template-columns:repeat(var(--per-row),minmax(0,1fr));gap:1rem}
@media (max-width:640px){.answers{grid-template-columns:minmax(0,1fr)}}
.answer{border:1px solid rgba(127,127,127,.3);border-radius:.5rem;padding:calc(1rem - 1px)}
.answer .who{font-size:14px;line-height:1.4;display:flex;align-items:center;gap:.45em}
.answer .who i{width:.65em;height:.65em;border-radius:50%;flex:none}
.answer .digit{font-size:2.25rem;line-height:1.3}
.answer .sure{display:inline-block;font-size:14px;padding:0 .45em;border-radius:1em;background:rgba(127,127,127,.15)}
.answers-note{font-size:14px;opacity:.7;margin:.75rem 0 1rem}
.answers-seen{display:flex;gap:1.5rem;align-items:center}
.answers-seen p{margin:0}
.answers-copies{display:flex;gap:.5rem;margin-top:.5rem!important}
</style>"""
ANSWER = re.compile(r'<div class="answer" data-title="([^"]*)" data-digit="(\d)"')


def answer_cards(answers, per_row: int, height: int = 120, true_digit: int | None = None) -> str:
    """The models' answers as one HTML block (``ANSWERS_CSS``): for each (entry, prediction) pair, a card with the
    model's name and colour, its digit, how sure it is and its ten probabilities (``probability_bars``).

    One element instead of a container, a metric and bars per model: the Draw page sends and draws it on every
    stroke. ``read_answer_cards`` reads the answers back. ``prediction``: ``{"digit", "probs"}`` as
    ``core.predict.predict_image`` gives them."""
    cards = []
    for e, p in answers:
        digit = int(p["digit"])
        confidence = float(p["probs"][digit])
        sure = f"{confidence:.1%}" if confidence < 0.9995 else "&gt;99.9%"  # never a rounded-up 100%
        title = html.escape(e.title)
        cards.append(f'<div class="answer" data-title="{title}" data-digit="{digit}" role="group" '
                     f'aria-label="{title}: {digit}"><div class="who"><i style="background:{html.escape(e.color)}">'
                     f'</i>{title}</div><div class="digit">{digit}</div><span class="sure">{sure} sure</span>'
                     f'{probability_bars(p["probs"], e.color, height=height, true_digit=true_digit)}</div>')
    return f'<div class="answers" style="--per-row:{int(per_row)}">{"".join(cards)}</div>'


def read_answer_cards(*blocks: str) -> dict[str, str]:
    """What ``answer_cards`` shows in these HTML blocks (any others are passed over), as {model title: digit}:
    for tests and the load test's protocol clients."""
    return {html.unescape(title): digit for block in blocks for title, digit in ANSWER.findall(block)}


def heatmap(z, x, y, color: str, text=None, customdata=None, hovertemplate=None):
    """A heatmap from faint grey to ``color`` whose numbers read in light and dark themes.

    Plotly picks heatmap text colours from the cell colour without knowing the page behind a
    translucent cell, so the numbers are separate text traces: white on strong cells, the
    theme's own text colour elsewhere.
    """
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


def confusion_figure(title: str, color: str, cm, errors_only: bool = True) -> go.Figure:
    """A 10x10 confusion matrix: rows the true digit, columns the answer; the diagonal hidden if ``errors_only``."""
    cm = np.asarray(cm)
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


def epoch_axis(epochs: int) -> dict:
    """An x axis of whole epochs 1..``epochs``: a tick every 1, 2, 5, 10, 20 ... epochs, at most 15 of them (ticks
    every 7 epochs from 1, as before, read 1, 8, ..., 99, 106 on a 100-epoch run), nothing left of epoch 1."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if epochs <= 15 * s)
    return dict(title="Epoch", tick0=0, dtick=step, range=[0.1, max(epochs, 1) + 0.9])


def learning_curves(series, what: str, title: str, show_train: bool = True, height: int = 420,
                    log: bool = False, zoom: bool = False, reference: float | None = None) -> go.Figure:
    """``what`` ("loss" or "accuracy") per epoch: one solid training line and one dashed validation line
    per (label, colour, history) in ``series``; history is a list of per-epoch records.

    ``log``: loss on a log scale. ``zoom``: the accuracy axis starts just below the worst value
    after epoch 1 (epoch 1 would squash the differences that matter). ``reference``: a grey line
    at that accuracy, labelled as the committed model's.
    """
    label, fmt, _ = CURVES[what]
    hover = ":.2%" if what == "accuracy" else ":.4f"
    fig = go.Figure()
    epochs = 1
    for name, color, history in series:
        x = [r["epoch"] for r in history]
        epochs = max(epochs, len(x))
        parts = [("training", what, "solid", "circle")] if show_train else []
        for part, key, dash, symbol in [*parts, ("validation", f"val_{what}", "dash", "diamond")]:
            fig.add_scatter(x=x, y=[r[key] for r in history], name=f"{name}, {part}", mode="lines+markers",
                            line=dict(color=color, width=2.5, dash=dash), marker=dict(size=5, symbol=symbol),
                            legendgroup=name,
                            hovertemplate=f"epoch %{{x}}: %{{y{hover}}}<extra>{name}, {part}</extra>")
    yaxis = dict(title=label, tickformat=fmt)
    if log:
        yaxis |= dict(type="log", tickmode="array", tickvals=LOG_TICKS, tickformat="~g")
    late = [y for trace in fig.data for y in list(trace.y)[1:]]
    if zoom and epochs >= 4 and late:
        yaxis |= dict(range=[max(0.0, min(late) - 0.005), 1.0 + 0.002])
    if reference is not None:
        fig.add_hline(y=reference, line=dict(color="grey", dash="dot", width=1),
                      annotation_text=f"committed model, full data: {reference:.1%}",
                      annotation_position="bottom right")
    fig.update_layout(
        title=title, height=height, hovermode="x unified" if len(fig.data) <= 2 else "closest",
        xaxis=epoch_axis(epochs),
        yaxis=yaxis, legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0),
        margin=dict(t=50, b=10, l=10, r=10),
    )
    return fig


def seed_strip(models) -> go.Figure | None:
    """Every seed's test accuracy as a dot per model, the shown model ringed, mean ± sd as a bar.

    ``models``: [(title, colour, seeds table, the shown model's seed)]; None when no model has seeds.
    """
    if not models:
        return None
    fig = go.Figure()
    for title, color, table, shown_seed in models:
        acc = 100 * np.asarray(table["accuracy"], float)
        seeds = [int(s) for s in table["seed"]]
        mean, sd = acc.mean(), (acc.std(ddof=1) if len(acc) > 1 else 0.0)
        fig.add_scatter(x=[mean - sd, mean + sd], y=[title, title], mode="lines", line=dict(color=color, width=10),
                        opacity=0.3, hoverinfo="skip", showlegend=False)
        fig.add_scatter(x=[mean], y=[title], mode="markers", marker=dict(symbol="line-ns", size=22, color=color,
                        line=dict(width=3, color=color)), showlegend=False,
                        hovertemplate=f"mean {mean:.2f}% ± {sd:.2f}<extra>{title}</extra>")
        fig.add_scatter(x=acc, y=[title] * len(acc), mode="markers", showlegend=False, customdata=seeds,
                        marker=dict(size=[16 if s == shown_seed else 10 for s in seeds], color=color,
                                    line=dict(width=[3 if s == shown_seed else 0 for s in seeds], color="#888888")),
                        hovertemplate="seed %{customdata}: %{x:.2f}%<extra>" + title + "</extra>")
    fig.update_layout(height=90 + 60 * len(models), margin=dict(t=30, b=40, l=10, r=10),
                      title="Test accuracy of every seed",
                      xaxis=dict(title="Test accuracy (%)", ticksuffix="%"), yaxis=dict(autorange="reversed"))
    return fig


def cost_chart(costs, colors, axis: str, title: str, label: str) -> go.Figure:
    """Accuracy (mean ± sd over seeds) against one kind of cost (the column ``axis``, labelled ``label`` on a log
    scale), one point per model.

    The models are named in a legend, not beside their points: the two MLPs' points nearly touch, and names
    beside them ran over each other and, on a phone, off the plot.
    """
    fig = go.Figure()
    for (_, row), color in zip(costs.iterrows(), colors):
        fig.add_scatter(x=[row[axis]], y=[row["Accuracy"]], mode="markers", name=row["Model"],
                        marker=dict(size=16, color=color),
                        error_y=dict(type="data", array=[row["Accuracy sd"]], color=color, thickness=2),
                        hovertemplate=f"{row['Model']}<br>{axis}: %{{x:,.3~g}}<br>accuracy %{{y:.2f}}%<extra></extra>")
    fig.update_layout(height=400, margin=dict(t=40, b=10, l=10, r=10), title=f"Accuracy against {title.lower()}",
                      xaxis=dict(title=f"{label} (log scale)", type="log"),
                      yaxis=dict(title="Test accuracy, mean over seeds (%)", ticksuffix="%"),
                      legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    return fig


def reliability_diagram(r, title: str, color: str) -> go.Figure:
    """Accuracy per confidence bin (``core.stats.Reliability``) against the diagonal of perfect calibration."""
    centres = (r.edges[:-1] + r.edges[1:]) / 2
    filled = r.count > 0
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="#888888"), hoverinfo="skip",
                    showlegend=False)
    # faint where a bin holds few digits: one digit right or wrong makes a 0% or 100% bar that means little
    strength = np.clip(0.25 + 0.25 * np.log10(np.maximum(r.count[filled], 1)), 0.25, 1.0)
    fig.add_bar(x=centres[filled], y=r.accuracy[filled], width=(r.edges[1] - r.edges[0]) * 0.9, marker_color=color,
                marker_opacity=strength,
                customdata=np.stack([r.count[filled], r.confidence[filled]], axis=1), showlegend=False,
                hovertemplate="confidence %{customdata[1]:.1%}: right %{y:.1%} of %{customdata[0]:,} digits"
                              "<extra></extra>")
    fig.update_layout(title=f"{title}<br><sup>ECE {100 * r.ece:.2f}%</sup>", height=340,
                      margin=dict(t=60, b=10, l=10, r=10), bargap=0,
                      xaxis=dict(title="Confidence", range=[0, 1], tickformat=".0%"),
                      yaxis=dict(title="Accuracy", range=[0, 1.02], tickformat=".0%"))
    return fig
