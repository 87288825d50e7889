"""Home: what the project is, each model's test accuracy against its write-up, and where to go next."""

import streamlit as st

from core import MODELS, stats
from dashboard import entries, ui

st.title("MNIST: three models, side by side")
st.markdown(
    "Three handwritten-digit classifiers — a neural network written from scratch in NumPy, the same network "
    "in Keras, and a LeNet-5 convolutional network — learn from the same 55,000 MNIST digits and are tested on "
    "the same 10,000 they never saw. This dashboard shows how each one learns, where and why each one fails, "
    "and lets you draw a digit for all three to read."
)

ui.require_artifacts()
shown = entries.listed("metrics")
committed = [e for e in shown if e.committed]
if shown:
    seeds = entries.seeds_of(shown)
    for col, e, table in zip(st.columns(len(committed)), committed, seeds):  # the models the write-ups describe
        m = e.metrics
        diff = 100 * (m["test_accuracy"] - e.writeup)
        col.metric(
            e.title,
            f"{100 * m['test_accuracy']:.2f}%",
            delta=f"{diff:+.2f} pp vs write-up ({100 * e.writeup:.2f}%)",
            delta_color="normal" if abs(diff) >= 0.005 else "off",
            border=True,
            help=f"{m['errors']:,} of {m['test_size']:,} test digits wrong",
        )
        if table is not None and len(table["seed"]) > 1:
            mean, sd = stats.mean_sd(table["accuracy"])
            col.caption(f"{100 * mean:.2f} ± {100 * sd:.2f}% over {len(table['seed'])} seeds; the model shown is "
                        f"seed {e.settings['train']['seed']}.")
    st.subheader("Accuracy on the 10,000 test digits")
    ui.show_accuracy_table(shown, seeds)
    ui.artifacts_caption()
    pairs = ui.pairs_of(committed, seeds[:len(committed)])
    if pairs:
        st.subheader("Is the ranking real?")
        st.caption("Each pair of models on the same test digits (McNemar's exact test) and over every training seed "
                   "(a permutation test): a model is called better only when both agree that the difference "
                   "is not luck.")
        ui.show_verdicts(pairs)

st.subheader("Explore")
LINKS = [
    ("views/dataset.py", "Dataset", ":material/grid_view:", "Sample digits, class balance and the average digit."),
    ("views/training_curves.py", "Training", ":material/show_chart:", "Loss and accuracy per epoch, epoch times, "
     "settings."),
    ("views/results.py", "Results", ":material/leaderboard:", "Seeds and significance, per-digit accuracy, "
     "confusions, agreement, cost."),
    ("views/calibration.py", "Calibration", ":material/speed:", "When a model says 99%, is it right 99% of the "
     "time?"),
    ("views/misclassified.py", "Misclassified", ":material/image_search:", "Every test digit a model got wrong."),
    ("views/draw.py", "Draw", ":material/draw:", "Draw a digit and watch all three models read it."),
    ("views/beyond.py", "Beyond MNIST", ":material/public:", "Handwriting from other people: pen strokes and "
     "postal scans."),
    ("views/collection.py", "Your digits", ":material/collections:", "The digits visitors drew and saved, and how "
     "well each model reads them."),
    ("views/train_a_model.py", "Train", ":material/model_training:", "Train a model yourself and watch it learn."),
    ("views/inside.py", "Inside", ":material/neurology:", "Activations, saliency, weights and robustness."),
]
for row in (LINKS[:5], LINKS[5:]):  # two rows: ten cards in one are too narrow to read
    for col, (page, label, icon, text) in zip(st.columns(5), row):
        with col.container(border=True, height="stretch"):
            st.page_link(page, label=label, icon=icon)
            st.caption(text)
if len(committed) < len(MODELS):
    st.caption("Pages show what the artifacts that exist allow; the messages above say how to create the rest.")
