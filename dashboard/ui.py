"""Page furniture every page shares: the style every page gets, the missing-artifact message, the accuracy
table, where the figures come from and the galleries' digit cards."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import ArtifactError, compare
from core.artifacts import RETRAIN, artifacts_dir
from dashboard.pictures import digit_image

QUICK_RUN = f"{RETRAIN} --subset 2000 --epochs 2 --seeds 1"
# Streamlit keeps a row of pills on one line and scrolls it sideways, so on a phone the last of ten digits ("9")
# was cut off at the edge, with nothing to say there was more. Rows of pills wrap instead, as segmented controls do.
PAGE_CSS = '<style>[data-testid="stButtonGroup"] div:has(> button){flex-wrap:wrap}</style>'
# The galleries' cards (Misclassified, Beyond MNIST, Collection) have a fixed width and wrap. 172 px with an 8 px gap
# puts two in a row on a phone 390 px wide or more (Streamlit leaves 1 rem each side), where 196 px with a 16 px gap
# put one and left half the screen empty; the answers, in small type, still fit one to a line ("✗ NumPy ANN 3 (>99%)").
CARD_WIDTH, CARD_GAP = 172, "xsmall"


def show_artifact_error(error: ArtifactError | str) -> None:
    """The one way a page says an artifact is unusable: what is wrong and the command that fixes it."""
    message = str(error)
    if RETRAIN not in message and "Recreate it with:" not in message:
        message += f" Recreate it with: {RETRAIN}"
    st.error(message, icon=":material/error:")


def require_artifacts() -> None:
    """Stop the page with one clear message when there is no artifacts folder at all."""
    folder = artifacts_dir()
    if not folder.is_dir():
        st.error(f"There is no artifacts folder at {folder}, so there is nothing to show yet. "
                 f"Create it with: {RETRAIN}", icon=":material/error:")
        st.caption(f"For a quick (less accurate) demo set: `{QUICK_RUN}` takes well under a minute.")
        st.stop()


def show_accuracy_table(entries, seeds: list | None = None) -> pd.DataFrame:
    """The accuracy table of the Home and Results pages, one row per entry (all must have metrics),
    with each accuracy's 95% interval and, given each entry's seeds table (or None), the spread over seeds."""
    df = compare.accuracy_table([(e.title, e.metrics, e.writeup) for e in entries], seeds)
    sizes = [e.metrics.get("test_size") for e in entries]
    test_size = max((int(s) for s in sizes if isinstance(s, (int, float))), default=10_000)
    minutes = df["Training time"].max() >= 120
    shown = df.assign(**{"Training time": df["Training time"] / 60}) if minutes else df
    writeup = {"Write-up": ("Write-up", "%.2f%%", "{:.2f}%", "Test accuracy reported in the original write-up"),
               "Difference": ("vs write-up", "%+.2f pp", "{:+.2f} pp",
                              "Percentage points above (+) or below (-) the write-up")}
    shown = shown.assign(**{
        "95% interval": [f"{lo:.2f} – {hi:.2f}%" for lo, hi in zip(df["CI low"], df["CI high"])],
        "Over seeds": [f"{m:.2f} ± {sd:.2f}% ({k})" if k > 1 else ("one seed" if k == 1 else "—")
                       for m, sd, k in zip(df["Seed mean"], df["Seed sd"], df["Seeds"])],
    }).drop(columns=["CI low", "CI high", "Seed mean", "Seed sd", "Seeds"])
    order = ["Model", "Test accuracy", "95% interval", "Over seeds"]
    shown = shown[order + [c for c in shown.columns if c not in order]]
    without = df["Write-up"].isna().any()
    if without:  # models trained here have no write-up: those cells read "—", as text
        shown = shown.assign(**{c: [f.format(v) if pd.notna(v) else "—" for v in shown[c]]
                                for c, (_, _, f, _) in writeup.items()})
        writeup_config = {c: st.column_config.TextColumn(label, help=help_, alignment="right")
                          for c, (label, _, _, help_) in writeup.items()}
    else:
        writeup_config = {c: st.column_config.NumberColumn(label, format=fmt, help=help_)
                          for c, (label, fmt, _, help_) in writeup.items()}
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        "Model": st.column_config.TextColumn("Model", pinned=True),
        "Test accuracy": st.column_config.NumberColumn("Test accuracy", format="%.2f%%",
                                                       help="The model shown (trained with the first seed)"),
        "95% interval": st.column_config.TextColumn(
            "95% interval", help="Wilson score interval over the test digits: where the accuracy on another "
            "10,000 digits like these would fall, 19 times out of 20", alignment="right"),
        "Over seeds": st.column_config.TextColumn(
            "Mean ± sd over seeds", help="The same model trained with different seeds (weights, batch order, "
            "augmentation, validation split): how much of the accuracy is luck. In brackets: how many seeds",
            alignment="right"),
        "Errors": st.column_config.NumberColumn(f"Errors / {test_size:,}", format="localized",
                                                help="Test digits the model got wrong"),
        "Parameters": st.column_config.NumberColumn("Parameters", format="localized"),
        "Training time": st.column_config.NumberColumn("Training time", format="%.1f min" if minutes else "%.1f s",
                                                       help="Wall-clock time for all epochs"),
        "Inference per image": st.column_config.NumberColumn(
            "Inference / image", format="%.1f µs", help="Whole test set in one batch, divided by its size"),
        **writeup_config,
    })
    if without:
        st.caption("Rows marked *(this session)* are the models you trained on the Train page: they last until "
                   "you close this tab and have no write-up to compare with.")
    return df


def artifacts_caption() -> None:
    """Where the figures come from: training size, epochs and date, from the manifest."""
    from dashboard import cache

    try:
        manifest = cache.read("manifest")
    except ArtifactError as e:
        show_artifact_error(e)
        return
    runs = manifest.get("models", {})
    subsets = sorted({r["subset"] for r in runs.values() if r.get("subset")})
    if subsets:
        st.warning(
            f"These artifacts come from a quick run on {', '.join(f'{s:,}' for s in subsets)} training images, "
            f"so every figure is well below what the models reach. `{RETRAIN}` trains on the full data.",
            icon=":material/science:",
        )
    else:
        st.caption(trained_when(runs, manifest["created"]))


def trained_when(runs: dict, created: str) -> str:
    """The caption saying when the committed models were trained: one date for all, or each date with its
    models, and whether their training times come from the same machine (each run records its own)."""
    from core import SPECS

    days: dict[str, list[str]] = {}
    for name, run in runs.items():
        days.setdefault((run.get("trained") or created)[:10], []).append(SPECS[name].short if name in SPECS else name)
    machines = {run.get("machine") for run in runs.values()}
    if len(days) <= 1:
        said = f"Trained on the full MNIST training set; artifacts created {next(iter(days), created[:10])}."
    else:
        said = ("Trained on the full MNIST training set: "
                + ", ".join(f"{' and '.join(names)} on {day}" for day, names in sorted(days.items(), reverse=True))
                + ".")
    if len(machines) == 1 and None not in machines:
        return f"{said} Every training time was measured on one kind of machine ({machines.pop()})."
    if len(machines) > 1 and None not in machines:
        return f"{said} Training times come from different machines ({'; '.join(sorted(machines))})."
    return said + (" Training times from different days may come from different machines." if len(days) > 1 else "")


def pairs_of(shown, seeds: list) -> list:
    """``core.compare.pairwise`` for these entries (those with predictions on the same test digits)."""
    models = []
    for e, table in zip(shown, seeds):
        try:
            models.append((e.key, e.title, e.predictions, table))
        except ArtifactError:
            continue  # the page's own checks say so; a pair needs both models' predictions
    if len(models) < 2 or not compare.same_labels({k: p for k, _, p, _ in models}):
        return []
    return compare.pairwise(models)


def show_verdicts(pairs) -> None:
    """Each pair's verdict in words: a winner only where the test and the seeds both support one."""
    for pair in pairs:
        icon = ":material/check_circle:" if pair.verdict.winner else ":material/drag_handle:"
        st.markdown(f"{icon} {pair.verdict.text}")


def gallery():
    """The container a gallery's cards go in: they wrap, so it works at any window width."""
    return st.container(horizontal=True, wrap=True, gap=CARD_GAP)


def digit_card(image, heading: str, lines) -> None:
    """One card of a gallery: the digit, a markdown ``heading`` under it (what it is) and ``lines`` in small type
    (each model's answer)."""
    with st.container(border=True, width=CARD_WIDTH, gap="small", horizontal_alignment="center"):
        st.image(digit_image(image, 112), width=112)
        st.markdown(heading + "".join(f"  \n:small[{line}]" for line in lines))
