"""Dataset: a random draw of digits per class, how many digits each class has, and each class's mean image.

Uses the full MNIST data when it can be found (``MNIST_DIR`` or Keras's cache) and otherwise the
sample bundled in the artifacts, and says which.
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import ArtifactError
from dashboard import cache, ui
from dashboard.pictures import montage

PER_CLASS = 12
DIGITS = list(range(10))

st.title("The dataset")
st.markdown(
    "MNIST: 70,000 handwritten digits, 28×28 pixels in 256 grey levels, written by American high-school "
    "students and census employees. 60,000 are for training (the last 5,000 of them held out for validation) "
    "and 10,000 for testing."
)

data = cache.full_data()
sample = None
if data is None:
    ui.require_artifacts()
    try:
        sample = cache.read("sample")
    except ArtifactError as e:
        ui.show_artifact_error(e)
        st.stop()
    st.info(
        f"The full dataset is not on this machine, so this page shows the {len(sample['labels']):,} test digits "
        "bundled with the artifacts; class counts and mean images were computed on the full data at training "
        "time. Set `MNIST_DIR` to a folder with the MNIST files to draw from all 70,000.",
        icon=":material/inventory_2:",
    )
    pools = {"Bundled sample": (sample["images"], sample["labels"])}
    train_counts, test_counts = sample["train_counts"], sample["test_counts"]
    means = sample["class_means"]
else:
    (x_train, y_train), (x_test, y_test) = data
    st.success(f"Showing the full dataset: {len(y_train):,} training and {len(y_test):,} test digits.",
               icon=":material/database:")
    pools = {"Training set": (x_train, y_train), "Test set": (x_test, y_test)}
    train_counts, test_counts = np.bincount(y_train, minlength=10), np.bincount(y_test, minlength=10)
    means = None  # computed below, only when shown


@st.cache_data(show_spinner=False, max_entries=4)
def class_means(_x, _y, key: str) -> np.ndarray:
    return np.stack([_x[_y == d].mean(0) / 255 for d in DIGITS]).astype(np.float32)


# --- a random draw --------------------------------------------------------------------------------
st.header("Sample digits", divider="gray")
with st.container(horizontal=True, vertical_alignment="bottom", gap="medium"):
    first = next(iter(pools))
    pool_name = st.segmented_control("Draw from", list(pools), default=first, key="pool",
                                     required=True) if len(pools) > 1 else first
    if st.button("New random draw", icon=":material/shuffle:"):
        st.session_state.draw_seed = int(np.random.default_rng().integers(1 << 31))
seed = st.session_state.setdefault("draw_seed", 0)
images, labels = pools[pool_name]
rng = np.random.default_rng(seed)
picks = []
for d in DIGITS:
    idx = np.flatnonzero(labels == d)
    take = min(PER_CLASS, len(idx))
    picks += list(rng.choice(idx, take, replace=False)) + [None] * (PER_CLASS - take)
blank = np.zeros((28, 28), np.uint8)
sheet = montage([images[i] if i is not None else blank for i in picks], ncols=PER_CLASS, scale=3, row_labels=DIGITS)
st.image(sheet, caption=f"{PER_CLASS} random digits of each class from the {pool_name.lower()}, one row per digit",
         width="content")

# --- class balance --------------------------------------------------------------------------------
st.header("Class distribution", divider="gray")
fig = go.Figure()
for counts, label, color in ((train_counts, "Training", "#4F46E5"), (test_counts, "Test", "#CC79A7")):
    share = counts / max(counts.sum(), 1)
    fig.add_bar(x=DIGITS, y=counts, name=f"{label} ({int(counts.sum()):,})", marker_color=color,
                customdata=share, hovertemplate="digit %{x}: %{y:,} images (%{customdata:.1%})<extra></extra>")
fig.update_layout(title="Images per digit", barmode="group", xaxis=dict(title="Digit", dtick=1),
                  yaxis=dict(title="Images", tickformat=","), legend=dict(orientation="h", y=-0.2),
                  margin=dict(t=50, b=10), height=380)
st.plotly_chart(fig, width="stretch")
lo, hi = int(np.argmin(train_counts)), int(np.argmax(train_counts))
st.caption(f"Roughly balanced: the rarest training digit is {lo} ({int(train_counts[lo]):,}), the commonest "
           f"{hi} ({int(train_counts[hi]):,}); a model that always answered {hi} would score about "
           f"{test_counts[hi] / max(test_counts.sum(), 1):.0%}.")

# --- the average digit ------------------------------------------------------------------------------
st.header("The mean image of each class", divider="gray")
if means is None:
    means = class_means(x_train, y_train, f"{len(y_train)}")
st.image(montage(means, ncols=10, scale=4, col_labels=DIGITS), width="content",
         caption="The average of every training image of each digit: where the ink usually is. Blurry edges "
                 "show how much handwriting varies.")
