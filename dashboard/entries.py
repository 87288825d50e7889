"""The models a page shows, as one kind of entry whatever their origin: the committed models (from
the artifacts) and those trained in this session on the Train page, in that order.

    for e in entries.listed("metrics", "predictions"):   # each with both usable
        e.title, e.color, e.metrics["test_accuracy"], e.predictions["pred"]

A page iterates over entries; it never merges the two origins by hand. What an entry holds is
read when first asked for (so a page that shows metrics never loads a model): ``metrics``,
``history``, ``settings`` (a plain dict), ``predictions``, ``misclassified``, ``seeds`` (every
training seed's test figures; a session model has one) and ``model``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st

from core import MODELS, SPECS, ArtifactError, artifacts
from core.evaluate import seed_row, seed_table
from core.models import model_class
from core.settings import from_dict, to_dict
from dashboard import cache, session, ui

PARTS = ("metrics", "history", "settings", "predictions", "misclassified", "seeds", "model")


@dataclass(eq=False)
class ModelEntry:
    key: str  # "lenet" for a committed model, "session-3" for one trained here
    name: str  # which of the three architectures (core.models.SPECS)
    title: str  # in tables and headings
    short: str  # in legends, filters and cards
    color: str  # in every chart
    origin: str  # "committed" or "session"
    created: str | None = None  # when it was trained (ISO), if known
    writeup: float | None = None  # the original write-up's test accuracy (committed models)
    stopped_early: bool = False  # a session model stopped before its last epoch
    _held: dict = field(default_factory=dict, repr=False)  # parts in hand
    _fetch: Callable[[str], object] | None = field(default=None, repr=False)  # how to read the others

    def get(self, part: str):
        """One part (see ``PARTS``); raises ArtifactError with a message for the page."""
        if part not in PARTS:
            raise KeyError(f"no part {part!r}; parts are {', '.join(PARTS)}")
        if part in self._held:
            return self._held[part]
        if self._fetch is None:
            raise ArtifactError(f"{self.title}: no {part} to show.")
        return self._fetch(part)  # not kept here: the cache re-reads a retrained file

    metrics = property(lambda self: self.get("metrics"))
    history = property(lambda self: self.get("history"))
    settings = property(lambda self: self.get("settings"))
    predictions = property(lambda self: self.get("predictions"))
    misclassified = property(lambda self: self.get("misclassified"))
    seeds = property(lambda self: self.get("seeds"))
    model = property(lambda self: self.get("model"))

    @property
    def committed(self) -> bool:
        return self.origin == "committed"

    @property
    def dash(self) -> str:
        """Line style in charts: solid for the committed models, dashed for this session's."""
        return "solid" if self.committed else "dash"


def _committed_part(name: str, part: str):
    if part == "model":
        return cache.model(name)
    if part == "settings":
        return complete_settings(name, cache.read("settings", name)["settings"])
    return cache.read(part, name)


def complete_settings(name: str, saved: dict) -> dict:
    """Saved settings with any field added since they were saved at its default, as the loaded model has it:
    new fields default to what training did before them (``core.augment.Augment``), so the table shows the
    settings that really made the model, not a gap. Settings the class cannot read are shown as saved."""
    try:
        return to_dict(from_dict(model_class(name).Settings, saved))
    except (TypeError, ValueError, KeyError):
        return saved


def committed() -> list[ModelEntry]:
    try:
        runs = cache.read("manifest").get("models", {})
    except ArtifactError:
        runs = {}
    return [ModelEntry(n, n, s.title, s.short, s.color, "committed", runs.get(n, {}).get("trained"), s.writeup,
                       _fetch=lambda part, n=n: _committed_part(n, part)) for n, s in SPECS.items() if n in MODELS]


def _usable(part: str, value) -> bool:
    """A session model's part passes the same checks as a committed model's file."""
    if value is None:
        return False
    if part in ("settings", "model"):  # held as the objects themselves, not as their files
        return True
    try:
        artifacts.FILES[part].check(value, None)
        return True
    except (ValueError, TypeError, KeyError, AttributeError):
        return False


def of_session() -> list[ModelEntry]:
    out = []
    for t in session.trained().values():
        job = t.job
        held = {"metrics": job.metrics, "history": job.model.history, "settings": to_dict(job.model.settings),
                "predictions": job.predictions, "misclassified": job.misclassified, "model": job.model}
        held = {k: v for k, v in held.items() if _usable(k, v)}
        if "metrics" in held and "predictions" in held:  # one seed: the run itself
            held["seeds"] = seed_table(job.model_name, [seed_row(job.model.settings.train.seed, held["metrics"],
                                                                 held["predictions"])])
        out.append(ModelEntry(t.key, job.model_name, f"{t.label} (this session)", t.label, t.color, "session",
                              t.finished, None, t.stopped_early, held))
    return out


def listed(*needs: str, among: list[ModelEntry] | None = None) -> list[ModelEntry]:
    """The committed entries, then this session's (or those ``among``), that have every part in ``needs``.

    A committed model that lacks one gets an error box saying what is wrong and how to fix it;
    a session model that lacks one (it cannot be fixed) a one-line note.
    """
    out = []
    for e in [*committed(), *of_session()] if among is None else among:
        try:
            for part in needs:
                e.get(part)
        except ArtifactError as err:
            if e.committed:
                ui.show_artifact_error(err)
            else:
                st.caption(f"{e.title}: not shown here ({err})")
            continue
        out.append(e)
    return out


def seeds_of(shown: list[ModelEntry]) -> list:
    """Each entry's seeds table, or None where its artifacts predate seeds (one note says how to add them)."""
    out, missing = [], []
    for e in shown:
        try:
            out.append(e.seeds)
        except ArtifactError:
            out.append(None)
            missing.append(e.title)
    if missing:
        st.info(f"No per-seed results for {', '.join(missing)}: these artifacts were made before models were "
                f"trained with several seeds. Run `{artifacts.RETRAIN}` (5 seeds per model) to see how much of "
                "each accuracy is the luck of one seed.", icon=":material/info:")
    return out
