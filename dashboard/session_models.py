"""Models trained in this browser session (on the Train page): kept in st.session_state, never saved.

    import session_models
    session_models.all()      # {key: SessionModel} finished models of this session, oldest first
    session_models.jobs()     # training jobs of this session still running

A SessionModel has the fields the committed models' artifacts have: ``model`` (with
``predict_proba`` and ``history``), ``metrics`` (as metrics.json), ``predictions`` and
``misclassified`` (as the .npz files), plus ``label`` (shown everywhere as "yours"),
``name`` (which of the three model types: numpy_mlp, keras_mlp, lenet) and ``settings``.
They last until the session ends; nothing here writes to ``artifacts/``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import streamlit as st

from common import SHORT

KEY = "session_models"
JOBS_KEY = "session_training_jobs"
PROBLEM_KEY = "session_training_problem"
MAX_MODELS = 5  # per session: the oldest goes when a sixth arrives (memory on a shared server)
# Okabe-Ito colours the committed models do not use, so "yours" never looks like a committed model.
COLORS = ["#CC79A7", "#0072B2", "#D55E00", "#F0E442", "#999999"]


@dataclass
class SessionModel:
    key: str
    label: str
    name: str
    model: object
    metrics: dict
    predictions: dict | None = None
    misclassified: dict | None = None
    settings: dict = field(default_factory=dict)
    color: str = "#CC79A7"  # its colour in every chart, distinct from the committed models'

    @property
    def history(self) -> list[dict]:
        return self.model.history


def _store() -> dict:
    return st.session_state.setdefault(KEY, {})


def _counter() -> int:
    n = st.session_state.get(KEY + "_count", 0) + 1
    st.session_state[KEY + "_count"] = n
    return n


def add(label: str, model, metrics: dict, predictions=None, misclassified=None, settings=None) -> SessionModel:
    """Keep a trained model for this session; returns its entry. ``label`` may be "" for the default."""
    n = _counter()
    name = model.name
    label = label or f"Your {SHORT.get(name, name)} #{n}"
    entry = SessionModel(f"session-{n}", label, name, model, metrics, predictions, misclassified,
                         dict(settings or {}), COLORS[(n - 1) % len(COLORS)])
    store = _store()
    store[entry.key] = entry
    while len(store) > MAX_MODELS:
        store.pop(next(iter(store)))
    return entry


def add_job(job) -> None:
    """Remember a running core.live.TrainingJob; its model joins ``all()`` once it has finished."""
    st.session_state.setdefault(JOBS_KEY, []).append(job)


def jobs() -> list:
    """This session's jobs still training (finished ones are moved into ``all()``)."""
    _collect()
    return list(st.session_state.get(JOBS_KEY, []))


def _collect() -> None:
    """Move finished jobs' models into the registry, wherever the session is when they finish."""
    pending = st.session_state.get(JOBS_KEY, [])
    for job in list(pending):
        if job.done:
            pending.remove(job)
            if job.model is not None:
                info = job.progress()
                entry = add("", job.model, job.metrics, job.predictions, job.misclassified,
                            {"train_size": job.train_size, "epochs": len(job.model.history),
                             "stopped_early": info["state"] == "stopped",
                             **{k: getattr(job.settings, k) for k in ("batch_size", "lr", "augment")}})
                job.entry_key = entry.key
            else:  # failed, or stopped before the first step: say so once on the Train page
                info = job.progress()
                st.session_state[PROBLEM_KEY] = info["error"] or info["message"]


def last_problem() -> str | None:
    """Why this session's last job produced no model (shown once), or None."""
    _collect()
    return st.session_state.pop(PROBLEM_KEY, None)


def all() -> dict[str, SessionModel]:  # noqa: A001 - the name the other pages use
    """{key: SessionModel} for this session's finished models, oldest first."""
    _collect()
    return dict(_store())


def next_color() -> str:
    """The colour the next model trained in this session will have."""
    return COLORS[st.session_state.get(KEY + "_count", 0) % len(COLORS)]


def get(key: str) -> SessionModel | None:
    return all().get(key)


def remove(key: str) -> None:
    _store().pop(key, None)


def clear() -> None:
    _store().clear()


# --- Keras and Streamlit reruns ------------------------------------------------------------------
def _clean_without_keras() -> None:
    """Streamlit's post-run clean-up, minus ``keras.backend.clear_session()``."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # noqa: S110 - as Streamlit: never let clean-up break the app
            pass


def keep_keras_state() -> bool:
    """Stop Streamlit from clearing Keras's global state after every script run; True if installed.

    Streamlit (1.67, ``script_runner._clean_problem_modules``) calls
    ``keras.backend.clear_session()`` when any session's script run ends, to free models
    that apps rebuild on every run. That call swaps Keras's thread-local state for *every*
    thread: a model being built or traced in a training thread (or called in another
    session) then loses its name counters and scopes, e.g. "All layers added to a
    Sequential model should have unique names". This app builds models only in training
    jobs and caches the rest, so it has nothing for that call to free. Process-wide,
    idempotent; does nothing if Streamlit's internals have moved (the Train page still
    works then, with the race back).
    """
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return False
    if not hasattr(script_runner, "_clean_problem_modules"):
        return False
    script_runner._clean_problem_modules = _clean_without_keras
    return True


keep_keras_state()
