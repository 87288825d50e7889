"""This browser session's training jobs and the models they finished, kept in ``st.session_state``
and never saved. The Train page starts jobs; ``dashboard.entries`` shows the finished models beside
the committed ones on every page.

    session.add_job(job)      # a core.jobs.TrainingJob just started
    session.jobs()            # this session's jobs still training
    session.trained()         # {key: Trained} finished models, oldest first
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import streamlit as st

from core.models import SPECS

KEY = "session_models"
JOBS_KEY = "session_training_jobs"
PROBLEM_KEY = "session_training_problem"
COUNT_KEY = "session_models_count"
MAX_MODELS = 5  # per session: the oldest goes when a sixth arrives (memory on a shared server)
# Okabe-Ito colours the committed models do not use, so "yours" never looks like a committed model.
COLORS = ["#CC79A7", "#0072B2", "#D55E00", "#F0E442", "#999999"]


@dataclass
class Trained:
    """A finished job kept for this session, with the name and colour it has on every page."""

    key: str
    label: str
    color: str
    job: object  # core.jobs.TrainingJob, done, with model, metrics, predictions, misclassified
    stopped_early: bool
    finished: str  # ISO time


def _store() -> dict[str, Trained]:
    return st.session_state.setdefault(KEY, {})


def add_job(job) -> None:
    """Remember a running core.jobs.TrainingJob; its model joins ``trained()`` once it has finished."""
    st.session_state.setdefault(JOBS_KEY, []).append(job)


def jobs() -> list:
    """This session's jobs still training (finished ones are moved into ``trained()``)."""
    _collect()
    return list(st.session_state.get(JOBS_KEY, []))


def _collect() -> None:
    """Move finished jobs' models into the store, wherever the session is when they finish."""
    pending = st.session_state.get(JOBS_KEY, [])
    for job in list(pending):
        if not job.done:
            continue
        pending.remove(job)
        info = job.progress()
        if job.model is None:  # failed, or stopped before the first step: say so once on the Train page
            st.session_state[PROBLEM_KEY] = info["error"] or info["message"]
            continue
        n = st.session_state.get(COUNT_KEY, 0) + 1
        st.session_state[COUNT_KEY] = n
        store = _store()
        key = f"session-{n}"
        store[key] = Trained(key, f"Your {SPECS[job.model_name].short} #{n}", COLORS[(n - 1) % len(COLORS)], job,
                             info["state"] == "stopped",
                             dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        while len(store) > MAX_MODELS:
            store.pop(next(iter(store)))


def trained() -> dict[str, Trained]:
    """{key: Trained} for this session's finished models, oldest first."""
    _collect()
    return dict(_store())


def last_problem() -> str | None:
    """Why this session's last job produced no model (shown once), or None."""
    _collect()
    return st.session_state.pop(PROBLEM_KEY, None)


def next_color() -> str:
    """The colour the next model trained in this session will have."""
    return COLORS[st.session_state.get(COUNT_KEY, 0) % len(COLORS)]


def remove(key: str) -> None:
    _store().pop(key, None)
