"""Inside: what each model computes for one digit (layer activations, saliency), what it has learnt
(first-layer weights, convolution filters), and how its answer holds up when the digit is
rotated, shifted, scaled, thickened or made noisy. The arrays come from the models' own hooks and
core.explain; dashboard.pictures turns them into images.
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import ArtifactError, explain
from dashboard import cache, entries, ui
from dashboard.pictures import colorize, digit_image, mosaic, overlay, upscale

DRAWN_KEY = "drawn_digit"  # the Draw page leaves the last 28x28 digit it read here
TABS = ["Layers", "Saliency", "Weights", "Robustness"]
CURVE_NOTES = {
    "rotate": "The fully connected networks tie every weight to one pixel, so turning the digit moves its ink "
              "onto weights that expect something else.",
    "shift": "A shift moves the ink onto pixels where training digits rarely had any. The CNN slides its "
             "filters over the image, so it copes better.",
    "scale": "Smaller or larger digits put their strokes where the training digits had none.",
    "thicken": "A thicker or thinner pen changes how much ink there is, not the shape.",
    "noise": "Noise adds faint ink everywhere; a network that learnt to look at strokes ignores more of it.",
}
PIXELATED = "<style>.st-key-inside img {image-rendering: pixelated;}</style>"  # crisp when scaled


def picture(rgb, scale: int, caption: str | None = None, width="content"):
    st.image(upscale(rgb, scale), caption=caption, width=width)


# --- the digit ---------------------------------------------------------------------------------
def choose_digit(sample):
    """(x28 float32, label or None, description) from the bundled test sample or the Draw page."""
    drawn = st.session_state.get(DRAWN_KEY)
    if drawn is None:
        st.caption("Pick a test digit, or draw your own on the Draw page and come back.")
    else:
        source = st.segmented_control("Digit", ["A test digit", "Your drawing"], default="Your drawing",
                                      required=True, key="inside_source", label_visibility="collapsed")
        if source == "Your drawing":
            return np.asarray(drawn, np.float32), None, "your drawing from the Draw page"
    labels = sample["labels"]
    digit = st.pills("Which digit", list(range(10)), default=3, required=True, key="inside_digit", wrap=True)
    pool = np.flatnonzero(labels == digit)
    k = st.slider("Example", 1, len(pool), 1, key="inside_example", help="The bundled sample has "
                  f"{len(pool)} test digits of each class.")
    i = int(pool[k - 1])
    return sample["images"][i].astype(np.float32) / 255, int(labels[i]), f"test digit #{int(sample['index'][i])}"


def predictions(shown, x) -> dict[str, np.ndarray]:
    return {e.key: e.model.predict_proba(x[None])[0] for e in shown}


# --- tabs ------------------------------------------------------------------------------------------
def layers_tab(shown, x):
    st.markdown("Each layer turns the picture into numbers that the next layer reads. **Brighter = more active.** "
                "A fully connected layer is a grid of squares, one per unit. A convolution gives one small picture "
                "per filter, showing where in the digit that filter found its pattern; pooling keeps the strongest "
                "response in each 2×2 block, halving the size.")
    for e in shown:
        st.markdown(f"##### {e.title}")
        acts = e.model.activations(x)
        maps = [(t, a) for t, a in acts if a.ndim == 3]
        units = [(t, a) for t, a in acts if a.ndim == 1]
        if maps:
            for col, (title, a) in zip(st.columns(len(maps)), maps):
                h, w, c = a.shape
                grid = mosaic(a.transpose(2, 0, 1), cols=4 if c <= 16 else 8, pad=1, normalize="global")
                with col:
                    picture(colorize(grid, "viridis", 0, 1), 4, f"{title}: {c} maps of {h}×{w}",
                            width="stretch")
        mlp = not maps
        cols = st.columns([1] * len(units) + [1.5 if mlp else 2])  # last: the MLPs' top units, or space
        for col, (title, a) in zip(cols, units):
            grid = mosaic(a.reshape(-1, 1, 1), cols=16, pad=0, normalize="global")
            with col:
                picture(colorize(grid, "viridis", 0, 1), 16, f"{title}; {int((a > 0).sum())} active",
                        width="stretch")
        if mlp:
            with cols[len(units)]:
                top_units(e.model, acts[0][1])


def top_units(model, a, k: int = 6):
    """The most active first-layer units and the weight images that made them fire."""
    order = np.argsort(a)[::-1][:k]
    w = model.first_layer_weights()[order]
    st.image(upscale(colorize(mosaic(w, cols=k, pad=2), "diverging"), 3),
             caption=f"The {k} most active units of the first layer and what each looks for "
                     "(red: ink here helps, blue: ink here hurts)")


def saliency_tab(shown, x, probs):
    method = st.radio(
        "Method", ["integrated_gradients", "gradient"], horizontal=True, key="inside_method",
        format_func={"integrated_gradients": "Which ink counted", "gradient": "Where ink would matter"}.get,
        help="Which ink counted: integrated gradients, the model's score for its answer shared out among the "
             "pixels you inked. Where ink would matter: the gradient, how the score would change if any pixel, "
             "inked or not, got a little darker.",
    )
    if method == "integrated_gradients":
        st.markdown("**Red** ink pushed the model towards its answer, **blue** ink pushed it away. "
                    "A network that reads the shape of a digit lights up the strokes that tell it apart.")
    else:
        st.markdown("**Red**: a bit more ink here would make the model surer of its answer; **blue**: less sure. "
                    "The fully connected networks react to pixels all over the square; the CNN looks near the strokes.")
    cols = st.columns(min(len(shown), 4))
    for i, e in enumerate(shown):
        s = explain.saliency(e.model, x, method=method, signed=True)
        p = probs[e.key]
        with cols[i % len(cols)].container(border=True):
            picture(overlay(x, s, signed=True), 8, f"{e.short}: says {int(p.argmax())} "
                                                        f"({p.max():.0%} sure)", width="stretch")


def weights_tab(shown):
    st.markdown("What the networks have learnt, before they see any digit. **Red** weights add up ink at that spot, "
                "**blue** ones subtract it, white ones ignore it.")
    for e in shown:
        model = e.model
        st.markdown(f"##### {e.title}")
        if model.kind == "mlp":
            w = model.first_layer_weights()
            grid = mosaic(w, cols=16, pad=2)
            picture(colorize(grid, "diverging"), 2, f"All {len(w)} units of the first hidden layer, one 28×28 "
                    "weight image each: the strokes and curves each unit responds to. Units that look like noise "
                    "learnt little: their weights are still close to where training started.", width="stretch")
        else:
            f1 = model.conv_filters(0)
            f2 = model.conv_filters(1)
            left, right = st.columns([1, 1], gap="large")
            with left:
                st.markdown(f"**First convolution: {len(f1)} filters of 5×5.** Each slides over the digit "
                            "looking for one small pattern: an edge at some angle, a bar, a corner.")
                top = float(np.abs(f1).max())
                st.image([upscale(colorize(f, "diverging", -top, top), 12) for f in f1],
                         caption=[f"filter {i + 1}" for i in range(len(f1))], width=60)
            with right:
                st.markdown(f"**Second convolution: {f2.shape[0]} filters**, each with a 5×5 weight for every "
                            f"one of the {f2.shape[1]} first-layer maps: it combines the first layer's patterns "
                            "into parts of digits. Darker = that map matters more to that filter.")
                strength = np.sqrt((f2 ** 2).sum((2, 3)))  # (out, in): how much filter o listens to map i
                fig = go.Figure(go.Heatmap(
                    z=strength.T, x=list(range(1, f2.shape[0] + 1)), y=list(range(1, f2.shape[1] + 1)),
                    colorscale="Greys", showscale=False, zmin=0, zmax=float(np.percentile(strength, 98)),
                    hovertemplate="second-layer filter %{x} ← first-layer map %{y}: %{z:.2f}<extra></extra>"))
                fig.update_layout(height=300, margin=dict(t=10, b=10, l=10, r=10),
                                  xaxis=dict(title="second-layer filter", dtick=4, fixedrange=True),
                                  yaxis=dict(title="first-layer map", dtick=4, autorange="reversed", fixedrange=True))
                st.plotly_chart(fig, width="stretch", config={"displayModeBar": False}, key=f"conv2-{e.key}")


def robustness_tab(shown, x, truth, sample):
    st.markdown("Change the digit on purpose and watch each model's answer. People read all of these easily; "
                "models only know what their training data showed them.")
    explorer(shown, x, truth)
    st.markdown("##### Accuracy as a distortion gets stronger")
    kind = st.segmented_control("Distortion", list(explain.DISTORTIONS), default="rotate", required=True,
                                key="inside_kind", format_func=lambda k: explain.DISTORTIONS[k]["title"])
    spec = explain.DISTORTIONS[kind]
    curves = {}
    for e in shown:
        curves[e.key] = curve(e, kind, sample)
    fig = go.Figure()
    for e in shown:
        fig.add_trace(go.Scatter(x=spec["strengths"], y=curves[e.key], name=e.short, mode="lines+markers",
                                 line=dict(color=e.color, width=3, dash="solid" if e.committed else "dot"),
                                 hovertemplate="%{x}: %{y:.1%}<extra>" + e.short + "</extra>"))
    fig.update_layout(height=340, margin=dict(t=10, b=10, l=10, r=10), legend=dict(orientation="h", y=-0.25),
                      xaxis=dict(title=f"{spec['title']} ({spec['unit']})"),
                      yaxis=dict(title="accuracy", range=[0, 1.02], tickformat=".0%"))
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False}, key="robust_curve")
    st.caption(f"Over the {len(sample['labels'])} bundled test digits. {CURVE_NOTES[kind]}")


SLIDERS = {"rb_rotate": 0, "rb_dx": 0, "rb_dy": 0, "rb_scale": 1.0, "rb_thicken": 0.0, "rb_noise": 0.0}


def reset_sliders():
    st.session_state.update(SLIDERS)


@st.fragment
def explorer(shown, x, truth):
    """Sliders, the distorted digit and every model's probabilities: reruns on its own, fast."""
    left, right = st.columns([1, 2], gap="medium")
    with left:
        rotate = st.slider("Rotate (degrees, + is anticlockwise)", -90, 90, 0, 5, key="rb_rotate")
        dx = st.slider("Shift right (pixels)", -8, 8, 0, key="rb_dx")
        dy = st.slider("Shift down (pixels)", -8, 8, 0, key="rb_dy")
        size = st.slider("Size (× original)", 0.4, 2.0, 1.0, 0.05, key="rb_scale")
        thick = st.slider("Stroke width (+ thicker, − thinner)", -2.0, 3.0, 0.0, 0.5, key="rb_thicken")
        noise = st.slider("Noise", 0.0, 0.8, 0.0, 0.05, key="rb_noise")
        st.button("Reset", icon=":material/restart_alt:", key="rb_reset", on_click=reset_sliders)
    xd = explain.distort(x, rotate=rotate, shift=(dx, dy), scale=size, thicken=thick, noise=noise)
    probs = {e.key: e.model.predict_proba(xd[None])[0] for e in shown}
    with right:
        a, b = st.columns([1, 2])
        a.image(digit_image(xd, 140), caption="What the models see", width="content")
        with b:
            for e in shown:
                p = probs[e.key]
                d = int(p.argmax())
                ok = "" if truth is None else (" ✓" if d == truth else " ✗")
                st.markdown(f"<span style='color:{e.color}'>●</span> **{e.short}**: {d} ({p[d]:.0%}){ok}",
                            unsafe_allow_html=True)
        fig = go.Figure()
        for e in shown:
            fig.add_trace(go.Bar(x=list(range(10)), y=probs[e.key], name=e.short, marker_color=e.color,
                                 hovertemplate="digit %{x}: %{y:.1%}<extra>" + e.short + "</extra>"))
        fig.update_layout(barmode="group", height=230, margin=dict(t=8, b=8, l=8, r=8), bargap=0.2,
                          legend=dict(orientation="h", y=-0.2),
                          xaxis=dict(tickmode="array", tickvals=list(range(10)), fixedrange=True),
                          yaxis=dict(range=[0, 1], tickformat=".0%", fixedrange=True))
        st.plotly_chart(fig, width="stretch", config={"displayModeBar": False}, key="robust_probs")


@st.cache_data(show_spinner="Testing the committed models on distorted digits…", max_entries=32)
def _committed_curve(name: str, kind: str, stamp: str, _model, _x, _y):
    return explain.robustness_curve({name: _model}, _x, _y, kind, explain.DISTORTIONS[kind]["strengths"])[name]


def curve(e, kind, sample):
    x, y = sample["images"].astype(np.float32) / 255, sample["labels"]
    if e.committed:
        return _committed_curve(e.key, kind, str(id(e.model)), e.model, x, y)
    kept = st.session_state.setdefault("inside_curves", {})
    key = (e.key, id(e.model), kind)
    if key not in kept:
        kept[key] = explain.robustness_curve({e.key: e.model}, x, y, kind, explain.DISTORTIONS[kind]["strengths"])[e.key]
    return kept[key]


# --- the page -----------------------------------------------------------------------------------
st.title("Inside the models")
st.markdown("Open up the three networks: what each layer computes for one digit, which pixels decided the "
            "answer, what the weights have learnt, and how easily each one is fooled.")
ui.require_artifacts()
try:
    sample = cache.read("sample")
except ArtifactError as err:
    ui.show_artifact_error(err)
    st.stop()
with st.spinner("Loading the models (only the first visit takes a few seconds)…"):
    shown = entries.listed("model")
if not shown:
    st.stop()

with st.container(key="inside"):
    st.html(PIXELATED)
    top_left, top_right = st.columns([1, 2], gap="large")
    with top_left:
        x, truth, where = choose_digit(sample)
    probs = predictions(shown, x)
    with top_right:
        a, b = st.columns([1, 2])
        a.image(digit_image(x, 140), caption=where + (f", labelled {truth}" if truth is not None else ""),
                width="content")
        with b:
            for e in shown:
                p = probs[e.key]
                d = int(p.argmax())
                st.markdown(f"<span style='color:{e.color}'>●</span> **{e.title}** says **{d}** "
                            f"({p[d]:.0%} sure)", unsafe_allow_html=True)

    tabs = st.tabs(TABS, key="inside_tab", on_change="rerun")
    with tabs[0]:
        if tabs[0].open:
            layers_tab(shown, x)
    with tabs[1]:
        if tabs[1].open:
            saliency_tab(shown, x, probs)
    with tabs[2]:
        if tabs[2].open:
            weights_tab(shown)
    with tabs[3]:
        if tabs[3].open:
            robustness_tab(shown, x, truth, sample)
