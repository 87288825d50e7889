"""Limits a shared server needs that Streamlit has no setting for, installed by ``Home.py`` once per
server process (like ``keras_guard``). Everything else is in ``dashboard/.streamlit/config.toml``.

- **Developer messages are ignored.** Any client may send any BackMsg, whatever its toolbar shows:
  ``clear_cache`` empties the caches of *every* session (each model reloads, the next Draw page
  waits seconds), ``load_git_info`` answers with the repository, branch and the names of
  uncommitted files and runs git, ``set_run_on_save`` reruns on file changes. The viewer toolbar
  never sends them, so they are dropped and logged.
- **Uploads are bounded.** Streamlit's upload endpoint takes any number of files per session (each
  up to ``server.maxUploadSize``) and holds them in memory: a session keeps at most
  ``MAX_SESSION_FILES`` (its oldest go first: the file uploader only needs its current file), and
  all sessions together at most ``MAX_TOTAL_UPLOAD_BYTES``, past which an upload is refused (503).
- **Ended sessions are let go.** Streamlit keeps a closed tab's session ``server.disconnectedSessionTTL``
  seconds for it to reconnect, then forgets it without shutting it down: its uploaded files stayed in
  memory for good, and with ``runner.postScriptGC`` off its objects waited minutes for a garbage
  collection. Every ``SWEEP_SECONDS`` a sweep shuts expired sessions down (files, media), drops
  uploads no session owns, and collects garbage when a session has ended, so memory is freed when
  the session ends instead of after every script run.
- **One BLAS thread per request.** A visitor's prediction is a few small matrix products (LeNet's
  convolutions among them). OpenBLAS spread them over both cores and its idle threads then spin for a
  while, waiting for more: 50-110 ms of the server's CPU per prediction, for 3 ms of work on one thread
  (README, "A class drawing at once"). The server answers many visitors at once, so each request gets one
  thread (``threadpoolctl``; environment variables come too late, as Streamlit has loaded NumPy by then).
- ``visitor()`` names the browser behind this session (tabs share it) and ``watching()`` says whether
  this tab is still connected: the Train page gives both to its training jobs (``core.jobs``).

Streamlit internals are reached in one place each; if a Streamlit update moves one, ``install`` logs it
and the app runs on without that limit (``tests/test_hardening_server.py`` then fails).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time

log = logging.getLogger(__name__)

IGNORED_MESSAGES = frozenset({"clear_cache", "load_git_info", "set_run_on_save"})
MAX_SESSION_FILES = 2  # uploads one session holds: the uploader's current file and the one replacing it
MAX_TOTAL_UPLOAD_BYTES = 64 * 2**20  # all sessions together: a dozen full-size photos
SWEEP_SECONDS = 2.0

_installed: set[str] = set()
_lock = threading.Lock()


def install() -> set[str]:
    """Install what this process lacks (idempotent); returns what is installed. Without a running
    Streamlit server (AppTest, bare mode) only the message filter is."""
    with _lock:
        if "messages" not in _installed and _filter_messages():
            _installed.add("messages")
        runtime = _runtime()
        if runtime is not None and "uploads" not in _installed and _cap_uploads(runtime):
            _installed.add("uploads")
        if runtime is not None and "sweep" not in _installed and _start_sweep(runtime):
            _installed.add("sweep")
        if runtime is not None and "blas" not in _installed and _one_blas_thread():
            _installed.add("blas")
        return set(_installed)


def _runtime():
    from streamlit import runtime

    return runtime.get_instance() if runtime.exists() else None


def _one_blas_thread() -> bool:
    import numpy  # noqa: F401  (Streamlit loads it lazily: its BLAS must be loaded to be limited)
    from threadpoolctl import threadpool_limits

    limited = threadpool_limits(1, user_api="blas")  # process-wide, for every thread, from now on
    return bool(limited.get_original_num_threads().get("blas"))


# --- developer messages -----------------------------------------------------------------------------
def _filter_messages() -> bool:
    try:
        from streamlit.runtime.app_session import AppSession
    except ImportError:
        AppSession = None
    if AppSession is None or not hasattr(AppSession, "handle_backmsg"):
        log.warning("Streamlit has no AppSession.handle_backmsg: any visitor may clear every session's cache. "
                    "Update dashboard/server_guard.py for this Streamlit version.")
        return False
    original = AppSession.handle_backmsg
    if getattr(original, "_guarded", False):
        return True

    def handle_backmsg(self, msg):
        kind = msg.WhichOneof("type")
        if kind in IGNORED_MESSAGES:
            log.warning("Ignored a %s message from session %s: a developer message this app does not take",
                        kind, getattr(self, "id", "?"))
            return None
        return original(self, msg)

    handle_backmsg._guarded = True
    AppSession.handle_backmsg = handle_backmsg
    return True


# --- uploads -----------------------------------------------------------------------------------------
class UploadsFull(Exception):
    """All sessions together hold ``MAX_TOTAL_UPLOAD_BYTES``."""


def _cap_uploads(runtime) -> bool:
    manager = getattr(runtime, "uploaded_file_mgr", None)
    if manager is None or not all(hasattr(manager, a) for a in ("add_file", "remove_file", "file_storage", "_lock")):
        log.warning("Streamlit's uploaded-file manager is not the one dashboard/server_guard.py knows: uploads "
                    "are not capped per session.")
        return False
    original = manager.add_file
    guard = threading.Lock()

    def add_file(session_id, file):
        with guard:
            with manager._lock:  # a snapshot; the manager's own methods take this lock themselves
                held = [f for f in manager.file_storage.get(session_id, {}).values() if f.file_id != file.file_id]
                total = sum(len(f.data) for s in manager.file_storage.values() for f in s.values()
                            if f.file_id != file.file_id)
            for old in held[:max(0, len(held) - MAX_SESSION_FILES + 1)]:  # the oldest first
                manager.remove_file(session_id, old.file_id)
                total -= len(old.data)
            if total + len(file.data) > MAX_TOTAL_UPLOAD_BYTES:
                log.warning("Refused an upload of %d bytes: sessions hold %d bytes of uploads", len(file.data), total)
                from starlette.exceptions import HTTPException

                raise HTTPException(status_code=503, detail="The server holds too many uploads right now: try "
                                                            "again in a minute.")
            original(session_id, file)

    manager.add_file = add_file
    with manager._lock:  # what was sent before the first page ran (nothing was installed then)
        excess = [(sid, f.file_id) for sid, files in manager.file_storage.items()
                  for f in list(files.values())[:-MAX_SESSION_FILES]]
    for session_id, file_id in excess:
        manager.remove_file(session_id, file_id)
    return True


# --- ended sessions ------------------------------------------------------------------------------------
def _start_sweep(runtime) -> bool:
    manager = getattr(runtime, "_session_mgr", None)
    storage = getattr(manager, "_session_storage", None)
    loop = _event_loop(runtime)
    if not (hasattr(storage, "_cache") and hasattr(manager, "_storage_lock") and loop is not None):
        log.warning("Streamlit's session manager is not the one dashboard/server_guard.py knows: expired sessions "
                    "are not shut down, and their uploads stay in memory.")
        return False
    threading.Thread(target=_sweeper, args=(runtime, loop), name="session-sweeper", daemon=True).start()
    return True


def _event_loop(runtime):
    try:
        return runtime._get_async_objs().eventloop
    except Exception:  # the runtime is not started yet, or has changed
        return None


def _sweeper(runtime, loop) -> None:
    known: set[str] = set()
    while not loop.is_closed():
        time.sleep(SWEEP_SECONDS)
        done = threading.Event()
        result: dict = {}

        def on_loop(result=result, done=done):
            try:
                result["sessions"] = sweep(runtime)
            finally:
                done.set()

        try:
            loop.call_soon_threadsafe(on_loop)
        except RuntimeError:  # the loop has closed: the server is stopping
            return
        if not done.wait(60) or "sessions" not in result:
            continue
        sessions = result["sessions"]
        if known - sessions:  # a session has ended: free its objects now, not at the next full collection
            gc.collect()
        known = sessions


def sweep(runtime) -> set[str]:
    """On the server's event loop: shut down the sessions whose reconnection time has run out, drop uploads
    no session owns; returns the ids of the sessions still there (connected or waiting to reconnect)."""
    manager = runtime._session_mgr
    with manager._storage_lock:
        expired = manager._session_storage._cache.expire()
    for _, info in expired:
        try:
            info.session.shutdown()
        except Exception:
            log.warning("shutting down expired session %s failed", info.session.id, exc_info=True)
    sessions = {info.session.id for info in manager.list_sessions()}
    uploads = runtime.uploaded_file_mgr
    for session_id in [s for s in list(getattr(uploads, "file_storage", {})) if s not in sessions]:
        uploads.remove_session_files(session_id)
    return sessions


# --- who is there ----------------------------------------------------------------------------------------
def visitor() -> str:
    """An id for the browser behind this session, shared by its tabs: its XSRF cookie's token (the cookie's
    text changes with every page load, its token does not); else its IP address; else the session's id."""
    import streamlit as st

    try:
        cookie, ip = st.context.cookies.get("_streamlit_xsrf"), st.context.ip_address
    except Exception:  # no server behind this session (AppTest)
        cookie = ip = None
    if cookie:
        try:
            from streamlit.web.server.starlette.starlette_app_utils import (
                decode_xsrf_token_string,
            )

            token, _ = decode_xsrf_token_string(cookie)
        except Exception:
            token = None
        if token:
            return "browser-" + hashlib.sha256(token).hexdigest()[:16]
    if ip:
        return f"ip-{ip}"
    return f"session-{_session_id()}"


def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def watching():
    """A callable, safe from any thread, saying whether this tab is still connected (always True without a
    running server: AppTest)."""
    session_id, runtime = _session_id(), _runtime()
    if session_id is None or runtime is None:
        return lambda: True
    return lambda: runtime.is_active_session(session_id)
