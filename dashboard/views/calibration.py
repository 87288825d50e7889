"""Calibration: when a model says it is 99% sure, is it right 99% of the time? A reliability diagram
per model before and after temperature scaling, the expected calibration error, and how sure each
model is when it is right and when it is wrong.
"""

import numpy as np
import pandas as pd
import streamlit as st

from core import compare
from dashboard import charts, entries, ui

st.title("Calibration: can you trust a model's confidence?")
st.markdown(
    "Every answer comes with a confidence: the probability the model gives its chosen digit. A model is "
    "**calibrated** when those numbers mean what they say: of all the answers given with 90% confidence, about "
    "90% are right. Neural networks trained to minimise cross-entropy are often over-confident. **Temperature "
    "scaling** fixes that with one number *T* per model, fitted on the 5,000 validation digits (never the test "
    "set): the log-probabilities are divided by *T* before the softmax, so the answer never changes, only how "
    "sure the model says it is. The figures below are each model's single reading of a digit; the Draw page "
    "averages five (test-time augmentation) and has a temperature of its own for that, set out under the table."
)
ui.require_artifacts()
shown = entries.listed("metrics", "predictions")
if not shown:
    st.stop()

BINS = 15
rows, diagrams = [], []
for e in shown:
    cal = e.metrics.get("calibration")
    temperature = cal["temperature"] if cal else None
    p = e.predictions
    result = compare.calibration(p["probs"], p["label"], temperature, BINS)
    diagrams.append((e, result))
    before, after = result["before"], result.get("after")
    rows.append({
        "Model": e.title, "T": temperature,
        "ECE before": 100 * before.ece, "ECE after": np.nan if after is None else 100 * after.ece,
        "Sure when right": 100 * before.mean_conf_right, "Sure when wrong": 100 * before.mean_conf_wrong,
        "Sure when wrong, calibrated": np.nan if after is None else 100 * after.mean_conf_wrong,
        "Validation ECE": (f"{100 * cal['val_ece_before']:.2f} → {100 * cal['val_ece_after']:.2f}%" if cal else "—"),
    })
uncalibrated = [e.title for e, r in diagrams if "after" not in r]
if uncalibrated:
    st.info(f"{', '.join(uncalibrated)}: saved before temperature scaling existed, so only the raw confidences "
            f"are shown. Retrain with `python -m core.train` to calibrate.", icon=":material/info:")

st.header("On the 10,000 test digits", divider="gray")
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
    "T": st.column_config.NumberColumn("Temperature T", format="%.2f",
                                       help="Above 1: the model was over-confident and is softened; below 1: "
                                       "under-confident and is sharpened"),
    "ECE before": st.column_config.NumberColumn("ECE, raw", format="%.2f%%",
                                                help="Expected calibration error: the gap between confidence and "
                                                f"accuracy, averaged over {BINS} confidence bins weighted by their "
                                                "digits. 0 is perfect"),
    "ECE after": st.column_config.NumberColumn("ECE, calibrated", format="%.2f%%"),
    "Sure when right": st.column_config.NumberColumn("Mean confidence when right", format="%.1f%%"),
    "Sure when wrong": st.column_config.NumberColumn("… when wrong (raw)", format="%.1f%%"),
    "Sure when wrong, calibrated": st.column_config.NumberColumn("… when wrong (calibrated)", format="%.1f%%"),
    "Validation ECE": st.column_config.TextColumn("Validation ECE, raw → calibrated",
                                                  help="On the digits the temperature was fitted on"),
})

fitted = [(e, e.metrics["calibration"]) for e, r in diagrams if "after" in r]
if fitted:
    nll = "; ".join(f"{e.short} {c['val_nll_before']:.4f} → {c['val_nll_after']:.4f}" for e, c in fitted)
    worse = [e.short for e, r in diagrams if "after" in r and r["after"].ece > r["before"].ece]
    st.markdown(f"Temperature scaling minimises the validation digits' negative log-likelihood, and it does lower it "
                f"({nll}). " + (
                    f"The expected calibration error does not always follow: for {', '.join(worse)} it rises a "
                    "little on the test digits. These models make so few mistakes that their ECE, a fraction of a "
                    "percent, comes from a few dozen digits in the lower bins, and moves by chance as much as by "
                    "the temperature: on MNIST they were close to calibrated already." if worse else
                    "The expected calibration error falls with it on the test digits, which were not used to fit "
                    "the temperature."))

draw_page = [(e, e.metrics["calibration"], e.metrics["tta_test_accuracy"]) for e in shown
             if "tta_test_accuracy" in e.metrics and "test_ece_tta_after" in (e.metrics.get("calibration") or {})]
if draw_page:
    st.markdown("**On the Draw page** each model reads a digit five times, as drawn, turned 8° and slanted either "
                "way, and averages. Averaging softens an answer, so that reading has its own temperature, fitted "
                "the same way on the validation digits: " + "; ".join(
                    f"{e.short} *T* = {c['tta_temperature']:.2f}, MNIST test {100 * acc:.2f}% right "
                    f"with an ECE of {100 * c['test_ece_tta_after']:.2f}%" for e, c, acc in draw_page) + ".")

st.subheader("Reliability diagrams")
st.markdown("Each bar is one confidence bin: its height is how often the model was right when it was that sure. "
            "On the dashed diagonal confidence equals accuracy; bars below it mean over-confidence. Nearly all "
            "test digits sit in the top bin, so the lower bins hold few digits: the fainter the bar, the fewer "
            "(hover for counts).")
calibrated = st.toggle("After temperature scaling", value=True, key="calibrated",
                       disabled=bool(uncalibrated) and len(uncalibrated) == len(shown))
per_row = 3
for start in range(0, len(diagrams), per_row):
    for col, (e, result) in zip(st.columns(per_row), diagrams[start:start + per_row]):
        r = result["after"] if calibrated and "after" in result else result["before"]
        col.plotly_chart(charts.reliability_diagram(r, e.title, e.color), width="stretch", key=f"rel-{e.key}")
st.caption("The confidence of a wrong answer matters most to a user: a model that is 99% sure of a wrong digit "
           "misleads; one that says 55% invites a second look.")
