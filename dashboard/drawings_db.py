"""The saved drawings for the pages: Streamlit's SQL connection, whose engine goes to
``core.drawings.Store``, the collection this session saves to and views, and this session's own
saves and limits (in ``st.session_state``; the database never learns who saved what).

    store = drawings_db.store()            # raises core.drawings.StoreUnavailable with a message
    name, problem = drawings_db.collection()
    saved = drawings_db.save(label, result, answers)   # checked, limited, remembered for undo
    drawings_db.undo(1)                    # this session's last save; undo(None): all of them

Where the database is, the first of: $DRAWINGS_DB_URL; ``[connections.drawings]`` in
``.streamlit/secrets.toml`` (``url = "postgresql://..."``, or Streamlit's other connection keys);
a SQLite file, ``data/drawings.sqlite``.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import streamlit as st

from core import drawings
from core.drawings import BadDrawing, DrawingsError, StoreUnavailable

CONNECTION = "drawings"  # st.connection's name, and the secrets' [connections.drawings]
SAVED_KEY = "drawings_saved"  # this session's saves still kept: [{"id", "collection", "label", "fp"}]
QUOTA_KEY = "drawings_quota"
COLLECTION_KEY = "drawings_collection"  # the collection this session saves to and views


def _in_secrets() -> bool:
    try:
        return bool(st.secrets.get("connections", {}).get(CONNECTION))
    except Exception:  # no secrets file, or one that does not parse: as if none
        return False


def location() -> tuple[str | None, str]:
    """(URL or None for the secrets', where it comes from) for st.connection."""
    url = os.environ.get(drawings.ENV_VAR)
    if url:
        return url, f"${drawings.ENV_VAR}"
    if _in_secrets():
        return None, f"[connections.{CONNECTION}] in secrets.toml"
    return f"sqlite:///{drawings.DEFAULT_PATH}", str(drawings.DEFAULT_PATH)


@st.cache_resource(show_spinner=False, max_entries=4)
def _store(_engine, key: int) -> drawings.Store:
    return drawings.Store(_engine)


def store() -> drawings.Store:
    """The Store on this app's database; raises StoreUnavailable (never anything else) when it cannot be had."""
    url, where = location()
    if url == f"sqlite:///{drawings.DEFAULT_PATH}":
        try:
            drawings.DEFAULT_PATH.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreUnavailable(f"The drawings database's folder cannot be made ({e.strerror}).", "read-only") from None
    try:
        conn = st.connection(CONNECTION, type="sql", url=url) if url else st.connection(CONNECTION, type="sql")
    except Exception as e:  # a bad URL, a missing driver, incomplete secrets: say which, never a traceback
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise StoreUnavailable(f"The drawings database ({where}) is not set up correctly: {first}", "down") from None
    return _store(conn.engine, id(conn.engine))


# --- the collection --------------------------------------------------------------------------------
def collection() -> tuple[str, str | None]:
    """This session's collection, taken from ``?collection=`` when the address names a valid one, and
    why the address's name was not taken (None if it was, or there is none)."""
    asked = st.query_params.get("collection")
    problem = None
    if asked is not None:
        try:
            name = drawings.check_collection(asked)
            if st.session_state.get("drawings_param") != name:  # a new address: it decides
                st.session_state["drawings_param"] = name
                st.session_state[COLLECTION_KEY] = name
        except BadDrawing as e:
            problem = f"The address's collection name was not taken: {e}"
    return st.session_state.get(COLLECTION_KEY, drawings.DEFAULT_COLLECTION), problem


def choose(name: str) -> str | None:
    """Make ``name`` this session's collection (and the address's); returns why not, if it is refused."""
    try:
        name = drawings.check_collection(name)
    except BadDrawing as e:
        return str(e)
    st.session_state[COLLECTION_KEY] = name
    st.session_state["drawings_param"] = name
    st.query_params["collection"] = name
    return None


# --- this session's saves --------------------------------------------------------------------------
def saved() -> list[dict]:
    return st.session_state.setdefault(SAVED_KEY, [])


def quota() -> drawings.SessionQuota:
    return st.session_state.setdefault(QUOTA_KEY, drawings.SessionQuota())


def fingerprint(image) -> str:
    """What identifies a drawing in this session: the 28x28 pixels the models saw, hashed."""
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=8).hexdigest()


def save(label, image, answers: dict, name: str) -> drawings.Saved:
    """Save one drawing to ``name`` within this session's limits; raises DrawingsError with the reason."""
    mine = saved()
    quota().check(len(mine))
    result = store().save(name, label, image, answers)
    quota().record()
    mine.append({"id": result.id, "collection": result.collection, "label": int(label), "fp": fingerprint(image),
                 "size": result.size})
    return result


def undo(count: int | None = 1) -> int:
    """Delete this session's last ``count`` saves (None: all); returns how many were deleted. Only ids this
    session saved are ever deleted: they come from its own state, never from the browser."""
    mine = saved()
    chosen = mine[-count:] if count else list(mine)
    if not chosen:
        return 0
    db = store()
    gone = 0
    for name in dict.fromkeys(s["collection"] for s in chosen):
        gone += db.delete(name, [s["id"] for s in chosen if s["collection"] == name])
    for s in chosen:  # deleted now, or already gone (an operator purged it): not this session's any more
        mine.remove(s)
    return gone


def describe(error: DrawingsError, doing: str) -> str:
    """An error as the pages say it: what failed, why, and that everything else still works."""
    if isinstance(error, StoreUnavailable):
        return f"{doing}: {error} Drawing and predicting still work, and nothing saved before is lost."
    return f"{doing}: {error}"
