"""Keep Keras's global state through Streamlit's reruns, installed by ``Home.py``.

Streamlit (1.67, ``script_runner._clean_problem_modules``) calls ``keras.backend.clear_session()``
when any session's script run ends, to free models that apps rebuild on every run. That call
swaps Keras's thread-local state for *every* thread: a model being built or traced in a training
thread (or called in another session) then loses its name counters and scopes, e.g. "All layers
added to a Sequential model should have unique names". This app builds models only in training
jobs and caches the rest, so it has nothing for that call to free: ``install`` replaces that
private function with the same clean-up minus Keras. If Streamlit has moved it, ``install`` says
so in the server log and the app runs on, with the race back for live training.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


def _clean_without_keras() -> None:
    """Streamlit's post-run clean-up, minus ``keras.backend.clear_session()``."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:
            log.debug("matplotlib clean-up failed", exc_info=True)


def install() -> bool:
    """Replace Streamlit's post-run clean-up; True if installed (idempotent, process-wide)."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        script_runner = None
    if script_runner is None or not hasattr(script_runner, "_clean_problem_modules"):
        import streamlit

        log.warning("Streamlit %s has no script_runner._clean_problem_modules to replace, so it may clear "
                    "Keras's state after every rerun: live training can then fail with duplicate layer names "
                    "while others use the app. Update dashboard/keras_guard.py for this Streamlit version.",
                    streamlit.__version__)
        return False
    script_runner._clean_problem_modules = _clean_without_keras
    return True
